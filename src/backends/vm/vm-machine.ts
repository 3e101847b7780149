import type { AgentDialer } from "../../agent/client/index.js";
import type { CredentialConfig } from "../../config/server-config.js";
import type { Warn } from "../../core/events.js";
import type { GuestExec } from "../../guest/exec.js";
import type { CreateSpec } from "../backend.js";
import type { BackendCapabilities } from "../capabilities.js";
import type { InstanceLocalDir, InstanceMeta } from "./instance-meta.js";
import type { VmImage } from "./vm-image.js";
import type { VmSizeLimits } from "./vm-size.js";

/**
 * What differs between the VM backends, and nothing else: how a hypervisor is spawned, reached
 * and stopped. Everything a VM shed shares (agent, credentials as tar, live sync, drain, hooks,
 * the instance directory and its metadata) is vm-backend.ts, written once.
 */

export type StopOutcome = "powerdown" | "killed" | "not-running";

/** The guest ports of shed-agent (the shared contract): exec, and health and messages. */
export const AGENT_GUEST_PORTS = { exec: 1024, control: 1026 } as const;

export interface VmCreateOptions {
  dataDir: string;
  name: string;
  serverId: string;
  image: VmImage;
  display?: string;
  /** Defaults: 1024 MiB, 2 CPUs, now. */
  memoryMiB?: number;
  cpus?: number;
  /** The disk's size, at least the image's; undefined: the image's own size. */
  diskBytes?: number;
  /** When the shed was created (ISO 8601). */
  createdAt?: string;
  /** A --local-dir as the server checked it, shared into the VM on every boot (where supported). */
  localDir?: InstanceLocalDir;
}

/** One VM instance: its directory and, while it runs, its hypervisor process. */
export interface VmMachine {
  readonly name: string;
  readonly dir: string;
  meta(): InstanceMeta;
  /** The recorded hypervisor process is alive (pid and start time match). */
  isRunning(): boolean;
  /** Reconciles the metadata with the live process (a dead hypervisor becomes "stopped"). */
  status(): Promise<{ running: boolean; foundDead: boolean }>;
  /** Spawns and configures the hypervisor; the guest is still booting when it returns. */
  start(): Promise<void>;
  /** Polls `probe` until it answers true within `timeoutMs`; fails early if the hypervisor exits. */
  waitForAgent(timeoutMs: number, probe: () => Promise<boolean>): Promise<number>;
  /** The guest's own clean shutdown, then SIGKILL after `timeoutMs`. */
  stop(timeoutMs: number): Promise<StopOutcome>;
  /** SIGKILL at once, and the helpers with it (failed boots, delete). */
  kill(): Promise<void>;
  /** Kills what runs, frees what the instance holds on the host, removes the instance directory. */
  remove(): Promise<void>;
  /** How the host reaches the agent's exec port, and the secret it proves (never logged). */
  agent(): { dial: AgentDialer; secret: string; where: string };
  /** The file holding the VM's disk, i.e. the workspace: what `delete --keep-volume` keeps. */
  workspaceDisk(): { path: string; suffix: string };
}

/** The credentials a backend mounts itself (VZ: directories through virtio-fs), and the rest for tar. */
export interface CredentialSplit {
  /** Mounts the shared ones in the guest; returns what it did, for the step's line. */
  mount(guest: GuestExec, warn: Warn): Promise<string | undefined>;
  /** What still goes in as tar, with the live sync. */
  rest: CredentialConfig[];
}

export interface VmDriver {
  readonly name: "qemu" | "firecracker" | "vz";
  readonly capabilities: BackendCapabilities;
  /** The hypervisor and what it needs are here: the error names what is missing and how to get it. */
  checkHost(): void;
  /** The hypervisor's ceilings on CPUs and memory, checked before anything is made (vm-size.ts). */
  sizeLimits?: VmSizeLimits;
  /** Refuses a create this backend cannot do, before anything is made (e.g. --local-dir on Firecracker). */
  checkCreate(spec: CreateSpec): void;
  /** The image a create boots (a build from `npm run build-vm-image`), checked for what this hypervisor needs. */
  image(name: string): VmImage;
  create(o: VmCreateOptions): Promise<VmMachine>;
  /** The machine of an existing instance of this backend, or undefined. */
  open(dataDir: string, name: string): VmMachine | undefined;
  /** For the storage step's line. */
  storageMessage(image: VmImage): string;
  /** The stop step's line. */
  stopMessage(outcome: StopOutcome, timeoutMs: number): string;
  /** Create step 3 / start step 2: mounts the --local-dir at /workspace (drivers without one refuse it in checkCreate). */
  mountLocalDir?(guest: GuestExec, machine: VmMachine, dir: InstanceLocalDir): Promise<string>;
  /** The credentials this driver shares itself; without it every credential goes in as tar. */
  splitCredentials?(machine: VmMachine, credentials: readonly CredentialConfig[]): CredentialSplit;
}
