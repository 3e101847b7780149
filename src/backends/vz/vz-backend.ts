import type { CredentialConfig } from "../../config/server-config.js";
import { ShedError } from "../../core/errors.js";
import type { Warn } from "../../core/events.js";
import type { GuestExec } from "../../guest/exec.js";
import type { CreateSpec, Ownership } from "../backend.js";
import { CAPABILITIES } from "../capabilities.js";
import type { InstanceLocalDir } from "../vm/instance-meta.js";
import { VmBackend, type VmBackendOptions } from "../vm/vm-backend.js";
import { resolveVmImage, type VmImage } from "../vm/vm-image.js";
import type { CredentialSplit, StopOutcome, VmDriver, VmMachine } from "../vm/vm-machine.js";
import { checkVfkitPath, VZ_LIMITS } from "./vfkit-argv.js";
import { checkVzHost } from "./vz-check.js";
import { type VzHost, VzMachine } from "./vz-machine.js";
import { mountShares, WORKSPACE_SHARE_TAG } from "./vz-shares.js";

export function vzHost(opts: VmBackendOptions, credentials: readonly CredentialConfig[]): VzHost {
  return { vfkitBinary: opts.vm.vfkitBinary, credentials };
}

/**
 * The seed's VZ column on the shared VM path (vm-backend.ts): vfkit spawns and stops the VM
 * (vz-machine.ts); a --local-dir and directory credentials are virtio-fs shares mounted through
 * the agent on create and on every start (mounts do not outlive a reboot); single-file
 * credentials go in as tar with the live sync.
 */
export function vzDriver(opts: VmBackendOptions, credentials: readonly CredentialConfig[]): VmDriver {
  const host = vzHost(opts, credentials);
  return {
    name: "vz",
    capabilities: CAPABILITIES.vz,
    sizeLimits: { maxCpus: VZ_LIMITS.maxCpus, maxMemoryMiB: VZ_LIMITS.maxMemoryMiB },
    checkHost: () => checkVzHost({ vfkitBinary: host.vfkitBinary }),
    checkCreate: (spec: CreateSpec) => {
      // A path vfkit's syntax cannot carry is refused before anything is made.
      if (spec.localDir) checkVfkitPath(spec.localDir.path, "--local-dir");
    },
    image: (name: string) => vzImage(opts, name),
    create: (o) => VzMachine.create(o, host),
    open: (dataDir, name) => VzMachine.open(dataDir, name, host),
    storageMessage: (image) => `clone of ${image.rootfs}`,
    stopMessage: (how: StopOutcome, timeoutMs: number) =>
      how === "powerdown"
        ? "stopped: vfkit took SIGTERM and the guest shut down"
        : how === "killed"
          ? `killed: vfkit had not exited within stop_timeout (${timeoutMs / 1000}s) of SIGTERM`
          : "it was not running",
    mountLocalDir: async (guest: GuestExec, machine: VmMachine, dir: InstanceLocalDir) => {
      // Fatal when it fails (the seed's error table): the lifecycle stops the VM and undoes the create.
      const share = VzMachine.shares(machine.meta(), []).shares.find((s) => s.tag === WORKSPACE_SHARE_TAG);
      if (!share) throw new ShedError("INTERNAL", `VM ${machine.name} has no workspace share`);
      await mountShares(guest, [share]);
      return `virtio-fs share of ${dir.path}`;
    },
    splitCredentials: (machine: VmMachine, given: readonly CredentialConfig[]): CredentialSplit => {
      // The shares vfkit was started with come from the server's credentials; what the step was given
      // decides which of them are mounted now.
      const plan = VzMachine.shares(machine.meta(), host.credentials);
      const wanted = new Set(given.map((c) => c.target));
      const shares = plan.shares.filter((s) => s.tag !== WORKSPACE_SHARE_TAG && wanted.has(s.target));
      const shared = new Set(shares.map((s) => s.target));
      return {
        rest: given.filter((c) => !shared.has(c.target)),
        mount: async (guest: GuestExec, warn: Warn) => {
          if (shares.length === 0) return undefined;
          try {
            await mountShares(guest, shares);
            return `${shares.length} director${shares.length === 1 ? "y" : "ies"} shared through virtio-fs`;
          } catch (err) {
            // Credential set-up failures are warnings (the seed's error table).
            warn((err as Error).message, (err as ShedError).hint);
            return "directory shares not mounted (see the warning)";
          }
        },
      };
    },
  };
}

function vzImage(opts: VmBackendOptions, name: string): VmImage {
  const image = resolveVmImage(opts.vm.imagesDir, "arm64", name);
  if (!image.armImage) {
    throw new ShedError("IMAGE_NOT_FOUND", `the VM image ${image.dir} has no Image, the uncompressed kernel VZ boots`, {
      hint: "rebuild it with `npm run build-vm-image -- --arch arm64`",
    });
  }
  return image;
}

export class VzBackend extends VmBackend {
  constructor(ownership: Ownership, opts: VmBackendOptions, credentials: readonly CredentialConfig[]) {
    super(ownership, opts, vzDriver(opts, credentials));
  }
}
