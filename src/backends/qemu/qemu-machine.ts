import { execFile } from "node:child_process";
import { chmodSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import type { AgentDialer } from "../../agent/client/index.js";
import { tcpDialer } from "../../agent/client/index.js";
import { writeFileAtomic } from "../../core/atomic-file.js";
import { ShedError } from "../../core/errors.js";
import { bootError } from "../vm/boot-error.js";
import { writeConfigDisk } from "../vm/config-disk.js";
import { pinLegacyImage } from "../vm/image-pin.js";
import { createInstanceDir, instanceDir, instancePath, removeInstanceDir } from "../vm/instance-dir.js";
import {
  type InstanceMeta,
  type ProcessRecord,
  readInstanceMeta,
  updateInstanceMeta,
  writeInstanceMeta,
} from "../vm/instance-meta.js";
import { VmMachineBase } from "../vm/machine-base.js";
import { allocateLoopbackPorts, isLoopbackPortFree, releasePending } from "../vm/ports.js";
import { isAlive, killProcess, reattach, spawnDetached } from "../vm/process.js";
import { AGENT_GUEST_PORTS, type StopOutcome, type VmCreateOptions, type VmMachine } from "../vm/vm-machine.js";
import { canConnectUnix, isLoopbackTcpListening, loopbackPortSpeaks, pollUntil, tailFile } from "../vm/wait.js";
import { type Accel, buildKernelCmdline, buildQemuArgv, chooseAccel, macForName } from "./qemu-argv.js";
import {
  buildPastaArgv,
  buildSlirpNetdev,
  GUEST_NET,
  netnsWrapper,
  type PortForward,
  resolvConfText,
} from "./qemu-network.js";
import { startVirtiofsd, VIRTIOFS_TAG } from "./qemu-virtiofs.js";
import { QmpClient } from "./qmp.js";

const execFileAsync = promisify(execFile);

export interface AgentEndpoint {
  host: "127.0.0.1";
  execPort: number;
  controlPort: number;
  /**
   * The per-VM secret the host proves to the agent (never logged): the 64-hex text exactly as the
   * guest's /run/shed-agent/secret holds it, which is what AgentClient's `secret` expects.
   */
  secret: string;
}

/**
 * One QEMU virtual machine, as files in its instance directory plus (while it runs) a QEMU
 * process and its passt network process, both detached from the server. Every method reads the
 * metadata afresh: the object holds no state a restarted server would lack, so `QemuMachine.open`
 * after a restart is the same as the object that created the VM.
 */
export class QemuMachine extends VmMachineBase implements VmMachine {
  protected readonly hypervisorLabel = "QEMU";

  private constructor(
    dataDir: string,
    name: string,
    dir: string,
    private readonly accel: Accel,
  ) {
    super(dataDir, name, dir);
  }

  /**
   * Makes the instance: directory (0700), qcow2 overlay over the image's rootfs (the base is never
   * written; `o.image` is the immutable build resolveVmImage found behind the current symlink, so the
   * backing file and the metadata keep naming it after a rebuild), config disk with a fresh secret, forwarded ports, metadata. Does not boot it. A
   * failure removes what was made.
   */
  static async create(o: VmCreateOptions & { repo?: string }): Promise<QemuMachine> {
    const dir = createInstanceDir(o.dataDir, o.name);
    let ports: Record<string, number> = {};
    try {
      await execFileAsync(
        "qemu-img",
        // With a size, the overlay's virtual disk is that large (the guest grows its filesystem to it, grow-disk.ts).
        [
          "create",
          "-q",
          "-f",
          "qcow2",
          "-F",
          "raw",
          "-b",
          o.image.rootfs,
          instancePath(dir, "overlay"),
          ...(o.diskBytes !== undefined ? [String(o.diskBytes)] : []),
        ],
        { timeout: 60_000 },
      ).catch((err: { stderr?: string; message: string }) => {
        throw new ShedError(
          "BACKEND_ERROR",
          `qemu-img could not create the disk overlay for ${o.name}: ${(err.stderr || err.message).trim()}`,
          {
            hint: `check that ${o.image.rootfs} is readable and the data_dir has free space`,
          },
        );
      });
      writeConfigDisk(instancePath(dir, "configDisk"), o.name);
      ports = await allocateLoopbackPorts(o.dataDir, Object.keys(AGENT_GUEST_PORTS));
      const meta: InstanceMeta = {
        version: 1,
        name: o.name,
        backend: "qemu",
        image: o.image.dir,
        arch: o.image.arch,
        created_at: o.createdAt ?? new Date().toISOString(),
        ...(o.repo !== undefined ? { repo: o.repo } : {}),
        ...(o.display !== undefined ? { display: o.display } : {}),
        ...(o.localDir ? { local_dir: o.localDir } : {}),
        server_id: o.serverId,
        agent_transport: "tcp",
        ports,
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
    } finally {
      releasePending(ports);
    }
    return new QemuMachine(o.dataDir, o.name, dir, chooseAccel());
  }

  /** The machine of an existing QEMU instance directory, or undefined when there is none (or no metadata). */
  static open(dataDir: string, name: string): QemuMachine | undefined {
    const dir = instanceDir(dataDir, name);
    // Another VM backend's instance of that name is not a QEMU machine.
    if (readInstanceMeta(dir)?.backend !== "qemu") return undefined;
    return new QemuMachine(dataDir, name, dir, chooseAccel());
  }

  agentEndpoint(): AgentEndpoint {
    const m = this.meta();
    const execPort = m.ports.exec;
    const controlPort = m.ports.control;
    if (execPort === undefined || controlPort === undefined) {
      throw new ShedError("BACKEND_ERROR", `VM metadata of ${this.name} records no agent ports`);
    }
    return { host: "127.0.0.1", execPort, controlPort, secret: this.secret() };
  }

  agent(): { dial: AgentDialer; secret: string; where: string } {
    const e = this.agentEndpoint();
    return { dial: tcpDialer(e.host, e.execPort), secret: e.secret, where: `the agent of VM ${this.name}` };
  }

  workspaceDisk(): { path: string; suffix: string } {
    return { path: instancePath(this.dir, "overlay"), suffix: "qcow2" };
  }

  serialTail(lines = 20): string {
    return tailFile(instancePath(this.dir, "serialLog"), lines);
  }

  /**
   * Boots the VM: QEMU in a network namespace of its own (qemu-network.ts), then pasta joined to
   * that namespace for the outside and the agent forwards. Returns once QMP answers and the
   * forwards listen; the guest is still booting (see `waitForAgent`).
   */
  async start(): Promise<void> {
    const state = await reattach(this.dir);
    if (!state) throw new ShedError("SHED_NOT_FOUND", `VM instance ${this.name} has no metadata in ${this.dir}`);
    if (state.running) {
      // Re-attached to a running QEMU whose pasta died (killed, OOM): the guest is fine but
      // unreachable; a new pasta joins the same namespace and restores the forwards.
      const qemu = state.meta.hypervisor;
      if (qemu && !isAlive(state.meta.helpers.net)) await this.startNetwork(qemu, this.forwards(state.meta), false);
      return;
    }
    // A shed made before image builds names the moving symlink; pin it to its build first.
    const meta = await this.ensurePortsFree(await pinLegacyImage(this.dir, state.meta));
    for (const f of ["qmpSocket", "pidFile"] as const) rmSync(instancePath(this.dir, f), { force: true });
    const forwards = this.forwards(meta);
    // A --local-dir: virtiofsd first, since QEMU connects to its socket as it starts (and fails without it).
    const fsSocket = instancePath(this.dir, "fsSocket");
    if (meta.local_dir) {
      try {
        await startVirtiofsd({
          instanceDir: this.dir,
          dir: meta.local_dir,
          socket: fsSocket,
          log: instancePath(this.dir, "fsLog"),
        });
      } catch (err) {
        await this.settleStopped("killed");
        throw err;
      }
    }

    const qemuArgv = buildQemuArgv({
      name: this.name,
      accel: this.accel,
      memoryMiB: meta.memory_mib,
      cpus: meta.cpus,
      kernel: `${meta.image}/vmlinuz`,
      initrd: `${meta.image}/initrd.img`,
      cmdline: buildKernelCmdline({ net: GUEST_NET, agent: meta.agent_transport }),
      rootDisk: instancePath(this.dir, "overlay"),
      configDisk: instancePath(this.dir, "configDisk"),
      serialLog: instancePath(this.dir, "serialLog"),
      qmpSocket: instancePath(this.dir, "qmpSocket"),
      pidFile: instancePath(this.dir, "pidFile"),
      netdev: buildSlirpNetdev(forwards),
      mac: macForName(this.name),
      ...(meta.local_dir ? { sharedDir: { socket: fsSocket, tag: VIRTIOFS_TAG } } : {}),
    });
    const resolvConf = instancePath(this.dir, "resolvConf");
    writeFileAtomic(resolvConf, resolvConfText(), 0o600);
    const spawned = await spawnDetached({
      argv: [...netnsWrapper(resolvConf), ...qemuArgv],
      cwd: this.dir,
      stdoutFile: instancePath(this.dir, "hypervisorStdout"),
      stderrFile: instancePath(this.dir, "hypervisorStderr"),
    });
    // unshare and the wrapper script exec QEMU in place: the pid and start time are QEMU's.
    const qemu = { ...spawned, argv0: qemuArgv[0] as string };
    updateInstanceMeta(this.dir, (x) => ({ ...x, hypervisor: qemu, last_started_at: qemu.started_at }));
    const qmpUp = await pollUntil({
      ready: () => canConnectUnix(instancePath(this.dir, "qmpSocket")),
      failed: () => (isAlive(qemu) ? undefined : "QEMU exited"),
      timeoutMs: 15_000,
    });
    if (!qmpUp.ok) {
      await this.kill();
      throw bootError(this.dir, `QEMU did not start: ${qmpUp.reason}`, "hypervisorStderr");
    }
    // QEMU creates the socket with the umask's mode: 0600 as well as the 0700 directory.
    chmodSync(instancePath(this.dir, "qmpSocket"), 0o600);

    await this.startNetwork(qemu, forwards);
  }

  /**
   * Waits until the guest agent answers on its forwarded control port, or the deadline. `probe`
   * defaults to "the port sends the agent's hello"; the backend passes a full health check.
   */
  override waitForAgent(timeoutMs: number, probe?: () => Promise<boolean>): Promise<number> {
    const port = this.agentEndpoint().controlPort;
    return super.waitForAgent(timeoutMs, probe ?? (() => loopbackPortSpeaks(port, 2_000)));
  }

  /**
   * ACPI powerdown through QMP (the guest's power-button handler shuts down cleanly), then SIGKILL
   * if QEMU is still there after `timeoutMs`. The metadata records which it was.
   */
  async stop(timeoutMs: number): Promise<StopOutcome> {
    return this.stopWith(async () => {
      const qmp = await QmpClient.connect(instancePath(this.dir, "qmpSocket"), Math.min(timeoutMs, 5_000));
      try {
        await qmp.systemPowerdown();
      } finally {
        qmp.close();
      }
    }, timeoutMs);
  }

  /** The running virtiofsd of a --local-dir shed, if any. */
  fsHelper(): ProcessRecord | undefined {
    return this.meta().helpers.fs;
  }

  /** A recorded port that something else took while the VM was stopped is replaced by a free one. */
  private async ensurePortsFree(meta: InstanceMeta): Promise<InstanceMeta> {
    const busy: string[] = [];
    for (const [k, p] of Object.entries(meta.ports)) if (!(await isLoopbackPortFree(p))) busy.push(k);
    if (busy.length === 0) return meta;
    const fresh = await allocateLoopbackPorts(this.dataDir, busy);
    try {
      return updateInstanceMeta(this.dir, (m) => ({ ...m, ports: { ...m.ports, ...fresh } }));
    } finally {
      releasePending(fresh);
    }
  }

  private forwards(meta: InstanceMeta): PortForward[] {
    return Object.entries(AGENT_GUEST_PORTS).map(([k, guestPort]) => ({ hostPort: meta.ports[k] ?? 0, guestPort }));
  }

  /**
   * pasta joined to QEMU's namespace; resolves once the host side of every forward listens. On
   * failure a VM being booted is killed; a running one (re-attach) is left alone.
   */
  private async startNetwork(qemu: ProcessRecord, forwards: PortForward[], killOnFailure = true): Promise<void> {
    const pasta = await spawnDetached({
      argv: buildPastaArgv({
        targetPid: qemu.pid,
        forwards,
        logFile: instancePath(this.dir, "netLog"),
        uid: process.getuid?.() ?? 0,
      }),
      cwd: this.dir,
      stdoutFile: instancePath(this.dir, "netStdout"),
      stderrFile: instancePath(this.dir, "netStdout"),
    });
    updateInstanceMeta(this.dir, (x) => ({ ...x, helpers: { ...x.helpers, net: pasta } }));
    const netUp = await pollUntil({
      ready: () => forwards.every((f) => isLoopbackTcpListening(f.hostPort)),
      failed: () => (isAlive(pasta) ? undefined : "pasta exited"),
      timeoutMs: 10_000,
    });
    if (!netUp.ok) {
      if (killOnFailure) await this.kill();
      else await killProcess(pasta, 1_000);
      throw bootError(this.dir, `the VM's network (pasta) did not come up: ${netUp.reason}`, "netStdout");
    }
  }
}
