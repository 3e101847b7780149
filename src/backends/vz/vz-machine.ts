import { rmSync, statSync } from "node:fs";
import type { AgentDialer } from "../../agent/client/index.js";
import { unixDialer } from "../../agent/client/index.js";
import type { CredentialConfig } from "../../config/server-config.js";
import { ShedError } from "../../core/errors.js";
import { macForName } from "../qemu/qemu-argv.js";
import { bootError } from "../vm/boot-error.js";
import { writeConfigDisk } from "../vm/config-disk.js";
import { copyDisk, growDiskFile } from "../vm/disk-copy.js";
import { createInstanceDir, instanceDir, instancePath, removeInstanceDir } from "../vm/instance-dir.js";
import { type InstanceMeta, readInstanceMeta, updateInstanceMeta, writeInstanceMeta } from "../vm/instance-meta.js";
import { buildVmKernelCmdline } from "../vm/kernel-cmdline.js";
import { VmMachineBase } from "../vm/machine-base.js";
import { isAlive, reattach, signalProcess, spawnDetached } from "../vm/process.js";
import { AGENT_GUEST_PORTS, type StopOutcome, type VmCreateOptions, type VmMachine } from "../vm/vm-machine.js";
import { canConnectUnix, pollUntil } from "../vm/wait.js";
import { buildVfkitArgv, vfkitVsockSocketPath } from "./vfkit-argv.js";
import { planShares, type SharePlan } from "./vz-shares.js";

/** What the server config says about VZ's host side. */
export interface VzHost {
  vfkitBinary: string;
  /** The server's credentials: directories among them are shared into the VM with virtio-fs at spawn. */
  credentials: readonly CredentialConfig[];
}

/**
 * The guest's network under vfkit's NAT (VZNATNetworkDeviceAttachment): macOS's vmnet gives the
 * guest a DHCP lease on 192.168.64.0/24 by default. The image's init applies a static `ip=`, so
 * the address is fixed from the instance's MAC-derived number inside that range; vmnet's gateway
 * and resolver are the first address. Not verified: this machine has no macOS.
 */
function vzGuestNet(name: string) {
  const last = Number.parseInt(macForName(name).slice(-2), 16);
  const host = 2 + (last % 250);
  return { address: `192.168.64.${host}`, gateway: "192.168.64.1", netmask: "255.255.255.0", dns: "192.168.64.1" };
}

/**
 * One VZ virtual machine through vfkit (the seed's VZ column): a clonefile copy of the image's
 * rootfs and the config disk in the instance directory, and while it runs a detached vfkit with
 * a vsock Unix socket per agent port, virtio-fs shares for a --local-dir and for directory
 * credentials, NAT networking and the serial console in serial.log. It runs only on macOS on
 * Apple silicon; `launch` (the argv) is data and is checked against vfkit's documented syntax.
 */
export class VzMachine extends VmMachineBase implements VmMachine {
  protected readonly hypervisorLabel = "vfkit";

  private constructor(
    dataDir: string,
    name: string,
    dir: string,
    private readonly host: VzHost,
  ) {
    super(dataDir, name, dir);
  }

  static async create(o: VmCreateOptions, host: VzHost): Promise<VzMachine> {
    if (!o.image.armImage) {
      throw new ShedError(
        "IMAGE_NOT_FOUND",
        `the VM image ${o.image.dir} has no Image (the uncompressed kernel VZ boots)`,
        {
          hint: "build an arm64 image with `npm run build-vm-image -- --arch arm64`",
        },
      );
    }
    const dir = createInstanceDir(o.dataDir, o.name);
    try {
      await copyDisk(o.image.rootfs, instancePath(dir, "rawDisk"));
      if (o.diskBytes !== undefined) await growDiskFile(instancePath(dir, "rawDisk"), o.diskBytes);
      writeConfigDisk(instancePath(dir, "configDisk"), o.name);
      const meta: InstanceMeta = {
        version: 1,
        name: o.name,
        backend: "vz",
        image: o.image.dir,
        arch: o.image.arch,
        created_at: o.createdAt ?? new Date().toISOString(),
        ...(o.display !== undefined ? { display: o.display } : {}),
        ...(o.localDir ? { local_dir: o.localDir } : {}),
        server_id: o.serverId,
        agent_transport: "vsock",
        ports: {},
        hypervisor: null,
        helpers: {},
        memory_mib: o.memoryMiB ?? 1024,
        cpus: o.cpus ?? 2,
        ...(o.diskBytes !== undefined ? { disk_bytes: o.diskBytes } : {}),
      };
      writeInstanceMeta(dir, meta);
    } catch (err) {
      removeInstanceDir(o.dataDir, o.name);
      throw err;
    }
    return new VzMachine(o.dataDir, o.name, dir, host);
  }

  static open(dataDir: string, name: string, host: VzHost): VzMachine | undefined {
    const dir = instanceDir(dataDir, name);
    if (readInstanceMeta(dir)?.backend !== "vz") return undefined;
    return new VzMachine(dataDir, name, dir, host);
  }

  /** Which credentials are shared with virtio-fs and which go in as tar; the workspace share first. */
  static shares(meta: InstanceMeta, credentials: readonly CredentialConfig[]): SharePlan<CredentialConfig> {
    return planShares({
      ...(meta.local_dir ? { localDir: meta.local_dir.path } : {}),
      credentials,
      isDirectory: (p) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false,
    });
  }

  /** vfkit's argv for one boot of this instance (what `shed-server vm-plan` prints). */
  static launch(dir: string, meta: InstanceMeta, host: VzHost): { argv: string[] } {
    const { shares } = VzMachine.shares(meta, host.credentials);
    return {
      argv: buildVfkitArgv({
        binary: host.vfkitBinary,
        cpus: meta.cpus,
        memoryMiB: meta.memory_mib,
        kernel: `${meta.image}/Image`,
        initrd: `${meta.image}/initrd.img`,
        cmdline: buildVmKernelCmdline({ net: vzGuestNet(meta.name), agent: "vsock", console: "hvc0" }),
        rootDisk: instancePath(dir, "rawDisk"),
        configDisk: instancePath(dir, "configDisk"),
        mac: macForName(meta.name),
        vsock: Object.values(AGENT_GUEST_PORTS).map((port) => ({ port, socket: vfkitVsockSocketPath(dir, port) })),
        shares: shares.map((s) => ({ tag: s.tag, dir: s.source })),
        serialLog: instancePath(dir, "serialLog"),
      }),
    };
  }

  /** Spawns vfkit and waits for its agent socket; the guest is still booting when this returns. */
  async start(): Promise<void> {
    const state = await reattach(this.dir);
    if (!state) throw new ShedError("SHED_NOT_FOUND", `VM instance ${this.name} has no metadata in ${this.dir}`);
    if (state.running) return;
    const { argv } = VzMachine.launch(this.dir, state.meta, this.host);
    // vfkit cannot listen on a socket path that exists (a crash leaves them behind).
    for (const port of Object.values(AGENT_GUEST_PORTS)) rmSync(vfkitVsockSocketPath(this.dir, port), { force: true });
    const vfkit = await spawnDetached({
      argv,
      cwd: this.dir,
      stdoutFile: instancePath(this.dir, "hypervisorStdout"),
      stderrFile: instancePath(this.dir, "hypervisorStderr"),
    });
    updateInstanceMeta(this.dir, (m) => ({ ...m, hypervisor: vfkit, last_started_at: vfkit.started_at }));
    const execSocket = vfkitVsockSocketPath(this.dir, AGENT_GUEST_PORTS.exec);
    const up = await pollUntil({
      ready: () => canConnectUnix(execSocket),
      failed: () => (isAlive(vfkit) ? undefined : "vfkit exited"),
      timeoutMs: 15_000,
    });
    if (!up.ok) {
      await this.kill();
      throw bootError(this.dir, `vfkit did not start: ${up.reason}`, "hypervisorStderr");
    }
  }

  /** The seed's VZ stop: SIGTERM to vfkit (it asks the guest to stop), then SIGKILL after the timeout. */
  async stop(timeoutMs: number): Promise<StopOutcome> {
    return this.stopWith(async () => {
      const vfkit = this.meta().hypervisor;
      if (vfkit) signalProcess(vfkit, "SIGTERM");
    }, timeoutMs);
  }

  agent(): { dial: AgentDialer; secret: string; where: string } {
    return {
      dial: unixDialer(vfkitVsockSocketPath(this.dir, AGENT_GUEST_PORTS.exec)),
      secret: this.secret(),
      where: `the agent of VM ${this.name} (vsock port ${AGENT_GUEST_PORTS.exec})`,
    };
  }

  workspaceDisk(): { path: string; suffix: string } {
    return { path: instancePath(this.dir, "rawDisk"), suffix: "img" };
  }
}
