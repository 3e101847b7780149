import { chmodSync, readFileSync, rmSync } from "node:fs";
import type { AgentDialer } from "../../agent/client/index.js";
import { firecrackerDialer } from "../../agent/client/index.js";
import { ShedError } from "../../core/errors.js";
import { bootError } from "../vm/boot-error.js";
import { writeConfigDisk } from "../vm/config-disk.js";
import { copyDisk, growDiskFile } from "../vm/disk-copy.js";
import { createInstanceDir, instanceDir, instancePath, removeInstanceDir } from "../vm/instance-dir.js";
import {
  type InstanceMeta,
  type InstanceNetwork,
  readInstanceMeta,
  updateInstanceMeta,
  writeInstanceMeta,
} from "../vm/instance-meta.js";
import type { GuestNet } from "../vm/kernel-cmdline.js";
import { VmMachineBase } from "../vm/machine-base.js";
import { isAlive, reattach, spawnDetached } from "../vm/process.js";
import { AGENT_GUEST_PORTS, type StopOutcome, type VmCreateOptions, type VmMachine } from "../vm/vm-machine.js";
import { canConnectUnix, pollUntil } from "../vm/wait.js";
import { FirecrackerApi } from "./firecracker-api.js";
import {
  buildFirecrackerPlan,
  type FirecrackerRequest,
  firecrackerArgv,
  firecrackerBootArgs,
  firecrackerInstanceId,
  SEND_CTRL_ALT_DEL,
} from "./firecracker-plan.js";
import { allocateNetwork, planSubnet, releasePendingNetwork } from "./net-alloc.js";
import { deleteTap, ensureTap } from "./tap.js";

/** What the server config says about Firecracker's host side. */
export interface FirecrackerHost {
  binary: string;
  bridge: string;
  subnet: string;
}

/** Everything Firecracker is asked to do for one boot: its argv and the API requests, in order. */
export interface FirecrackerLaunch {
  argv: string[];
  requests: FirecrackerRequest[];
}

/**
 * One Firecracker microVM (the seed's Firecracker column): a raw copy of the image's rootfs and
 * the config disk in the instance directory, a TAP device on the bridge that `shed-server setup`
 * made, a guest IP and a vsock CID allocated for the instance's life, and while it runs a detached
 * `firecracker` configured through its REST API socket. The agent is reached through
 * Firecracker's vsock socket (CONNECT <port>). Nothing here runs on a machine without KVM; the
 * launch plan (`launch`) is data and is checked against Firecracker's API description.
 */
export class FirecrackerMachine extends VmMachineBase implements VmMachine {
  protected readonly hypervisorLabel = "Firecracker";

  private constructor(
    dataDir: string,
    name: string,
    dir: string,
    private readonly host: FirecrackerHost,
  ) {
    super(dataDir, name, dir);
  }

  /** Copies the rootfs (reflink where possible), writes the config disk, allocates TAP/IP/CID, writes the metadata. */
  static async create(o: VmCreateOptions, host: FirecrackerHost): Promise<FirecrackerMachine> {
    if (!o.image.vmlinux) {
      throw new ShedError(
        "IMAGE_NOT_FOUND",
        `the VM image ${o.image.dir} has no vmlinux (the kernel Firecracker boots)`,
        {
          hint: "rebuild it with `npm run build-vm-image` on an x86_64 host",
        },
      );
    }
    const dir = createInstanceDir(o.dataDir, o.name);
    let network: InstanceNetwork | undefined;
    try {
      await copyDisk(o.image.rootfs, instancePath(dir, "rawDisk"));
      if (o.diskBytes !== undefined) await growDiskFile(instancePath(dir, "rawDisk"), o.diskBytes);
      writeConfigDisk(instancePath(dir, "configDisk"), o.name);
      network = allocateNetwork(o.dataDir, host.subnet);
      const meta: InstanceMeta = {
        version: 1,
        name: o.name,
        backend: "firecracker",
        image: o.image.dir,
        arch: o.image.arch,
        created_at: o.createdAt ?? new Date().toISOString(),
        ...(o.display !== undefined ? { display: o.display } : {}),
        network,
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
    } finally {
      if (network) releasePendingNetwork(network);
    }
    return new FirecrackerMachine(o.dataDir, o.name, dir, host);
  }

  static open(dataDir: string, name: string, host: FirecrackerHost): FirecrackerMachine | undefined {
    const dir = instanceDir(dataDir, name);
    if (readInstanceMeta(dir)?.backend !== "firecracker") return undefined;
    return new FirecrackerMachine(dataDir, name, dir, host);
  }

  /** The argv and API requests one boot of this instance sends (what `shed-server vm-plan` prints). */
  static launch(dir: string, meta: InstanceMeta, host: FirecrackerHost): FirecrackerLaunch {
    const net = meta.network;
    if (!net) throw new ShedError("BACKEND_ERROR", `VM metadata of ${meta.name} records no network (TAP, IP, CID)`);
    const subnet = planSubnet(host.subnet);
    const guestNet: GuestNet = {
      address: net.ip,
      gateway: subnet.gateway,
      netmask: subnet.netmask,
      dns: hostResolver(subnet.gateway),
    };
    return {
      argv: firecrackerArgv({
        binary: host.binary,
        apiSock: instancePath(dir, "apiSocket"),
        id: firecrackerInstanceId(meta.name),
      }),
      requests: buildFirecrackerPlan({
        kernel: `${meta.image}/vmlinux`,
        initrd: `${meta.image}/initrd.img`,
        bootArgs: firecrackerBootArgs(guestNet),
        rootfs: instancePath(dir, "rawDisk"),
        configDisk: instancePath(dir, "configDisk"),
        cpus: meta.cpus,
        memoryMiB: meta.memory_mib,
        tap: net.tap,
        mac: net.mac,
        vsockUds: instancePath(dir, "vsockSocket"),
        cid: net.cid,
      }),
    };
  }

  /**
   * Boots: the TAP device (persistent TAPs vanish with a host reboot, so every start makes sure of
   * it), then firecracker with its API socket, then the configuration and InstanceStart. The guest
   * is still booting when this returns. The serial console is Firecracker's stdout.
   */
  async start(): Promise<void> {
    const state = await reattach(this.dir);
    if (!state) throw new ShedError("SHED_NOT_FOUND", `VM instance ${this.name} has no metadata in ${this.dir}`);
    if (state.running) return;
    const launch = FirecrackerMachine.launch(this.dir, state.meta, this.host);
    const net = state.meta.network as InstanceNetwork;
    await ensureTap(net.tap, this.host.bridge);
    // Firecracker refuses to start on a socket path that exists (a crash leaves them behind).
    for (const f of ["apiSocket", "vsockSocket"] as const) rmSync(instancePath(this.dir, f), { force: true });
    const fc = await spawnDetached({
      argv: launch.argv,
      cwd: this.dir,
      stdoutFile: instancePath(this.dir, "serialLog"),
      stderrFile: instancePath(this.dir, "hypervisorStderr"),
    });
    updateInstanceMeta(this.dir, (m) => ({ ...m, hypervisor: fc, last_started_at: fc.started_at }));
    const apiUp = await pollUntil({
      ready: () => canConnectUnix(instancePath(this.dir, "apiSocket")),
      failed: () => (isAlive(fc) ? undefined : "Firecracker exited"),
      timeoutMs: 10_000,
    });
    if (!apiUp.ok) {
      await this.kill();
      throw bootError(this.dir, `Firecracker did not start: ${apiUp.reason}`, "hypervisorStderr");
    }
    chmodSync(instancePath(this.dir, "apiSocket"), 0o600);
    try {
      await new FirecrackerApi(instancePath(this.dir, "apiSocket")).apply(launch.requests);
    } catch (err) {
      await this.kill();
      // Firecracker's own log lines go to its stdout, the serial log, beside the guest console.
      throw bootError(this.dir, (err as Error).message, "serialLog");
    }
  }

  /** SendCtrlAltDel (the guest's init reboots, which ends Firecracker: reboot=k), then SIGKILL. */
  async stop(timeoutMs: number): Promise<StopOutcome> {
    return this.stopWith(
      () => new FirecrackerApi(instancePath(this.dir, "apiSocket"), { timeoutMs: 5_000 }).send(SEND_CTRL_ALT_DEL),
      timeoutMs,
    );
  }

  agent(): { dial: AgentDialer; secret: string; where: string } {
    return {
      dial: firecrackerDialer(instancePath(this.dir, "vsockSocket"), AGENT_GUEST_PORTS.exec),
      secret: this.secret(),
      where: `the agent of microVM ${this.name} (vsock port ${AGENT_GUEST_PORTS.exec})`,
    };
  }

  workspaceDisk(): { path: string; suffix: string } {
    return { path: instancePath(this.dir, "rawDisk"), suffix: "ext4" };
  }

  /** The TAP device goes; the IP and CID are free once the metadata (removed with the directory) no longer records them. */
  protected override async freeHostResources(): Promise<void> {
    const tap = this.meta().network?.tap;
    if (tap) await deleteTap(tap);
  }
}

/**
 * The resolver the guest uses: the host's first nameserver that a guest can reach (not a loopback
 * one such as systemd-resolved's 127.0.0.53), else the bridge address.
 */
function hostResolver(fallback: string): string {
  try {
    for (const line of readFileSync("/etc/resolv.conf", "utf8").split("\n")) {
      const m = /^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/.exec(line);
      if (m?.[1] && !m[1].startsWith("127.")) return m[1];
    }
  } catch {
    // no resolv.conf: the fallback
  }
  return fallback;
}
