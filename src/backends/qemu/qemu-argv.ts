import { accessSync, constants } from "node:fs";

/**
 * QEMU's argv, built as an array from typed options (never a shell string). Nothing secret goes
 * here: every user of the host can read a process's argv. The agent secret travels on the config
 * disk instead.
 */

export type Accel = "kvm" | "tcg";

/** KVM when /dev/kvm exists and this user may open it; QEMU's software emulation (TCG) otherwise. */
export function chooseAccel(kvmDevice = "/dev/kvm"): Accel {
  try {
    accessSync(kvmDevice, constants.R_OK | constants.W_OK);
    return "kvm";
  } catch {
    return "tcg";
  }
}

/** The guest's side of the user-mode network (see qemu-network.ts for why these addresses). */
export interface GuestNet {
  address: string;
  gateway: string;
  netmask: string;
  dns: string;
}

export interface KernelCmdlineOptions {
  net: GuestNet;
  /** How the agent listens; undefined starts no agent listener at all. */
  agent: "tcp" | "vsock" | undefined;
}

/**
 * The kernel command line the image's init reads (the shared contract). `ip=` is applied by the
 * init itself: Debian's cloud kernel has no IP_PNP.
 */
export function buildKernelCmdline(o: KernelCmdlineOptions): string {
  const { address, gateway, netmask, dns } = o.net;
  const parts = ["root=/dev/vda", "rw", "console=ttyS0", `ip=${address}::${gateway}:${netmask}::eth0:off:${dns}`];
  // Without this, a panic leaves QEMU running forever; -no-reboot then turns the reboot into an exit.
  parts.push("panic=-1");
  if (o.agent) parts.push(`shed.agent=${o.agent}`);
  return parts.join(" ");
}

export interface QemuArgvOptions {
  /** Shown in `ps` and QMP; the shed name. */
  name: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  kernel: string;
  initrd: string;
  cmdline: string;
  /** The per-shed qcow2 overlay over the image's rootfs.ext4 (never the base itself: QEMU locks it). */
  rootDisk: string;
  /** The 4096-byte raw config disk (serial shedcfg). */
  configDisk: string;
  serialLog: string;
  qmpSocket: string;
  pidFile: string;
  /** The -netdev value (qemu-network.ts: slirp inside QEMU's own network namespace). */
  netdev: string;
  /** A stable MAC so the guest's eth0 looks the same on every boot. */
  mac: string;
  /** A --local-dir: virtiofsd's vhost-user socket and the tag the guest mounts (qemu-virtiofs.ts). */
  sharedDir?: { socket: string; tag: string };
}

/**
 * Machine type: q35, not microvm. The probe on this machine found microvm hanging at boot in about
 * 20-40% of runs ("tsc: Unable to calibrate against PIT") unless the kernel is given
 * tsc_early_khz=<the host's TSC kHz>, a host-specific value that would have to be measured and
 * would break on migration between hosts; q35 never hung in 30+ boots and reached a shell just as
 * fast. Nothing this backend needs is missing from q35 (virtio-pci devices, ACPI power button).
 */
export function buildQemuArgv(o: QemuArgvOptions): string[] {
  const argv = [
    "qemu-system-x86_64",
    "-name",
    `shed-${o.name},process=shed-${o.name}`,
    // No default devices (VGA, NIC, floppy, CD, parallel port, monitor): only what is listed below.
    "-nodefaults",
    "-no-user-config",
    "-machine",
    // vhost-user-fs needs the guest's RAM in memory virtiofsd can map: a shared memfd backend.
    o.sharedDir ? "q35,memory-backend=mem" : "q35",
    "-accel",
    o.accel,
    "-cpu",
    o.accel === "kvm" ? "host" : "max",
    "-m",
    String(o.memoryMiB),
    "-smp",
    String(o.cpus),
    "-display",
    "none",
    // A guest reboot (or a panic with panic=-1) ends QEMU, so the server sees a stop, not a silent restart.
    "-no-reboot",
    "-kernel",
    o.kernel,
    "-initrd",
    o.initrd,
    "-append",
    o.cmdline,
    // The root disk first, so the guest names it vda (root=/dev/vda).
    "-drive",
    `if=none,id=root,file=${optValue(o.rootDisk)},format=qcow2,cache=writeback,discard=unmap`,
    "-device",
    "virtio-blk-pci,drive=root",
    "-drive",
    `if=none,id=shedcfg,file=${optValue(o.configDisk)},format=raw,readonly=on`,
    "-device",
    "virtio-blk-pci,drive=shedcfg,serial=shedcfg",
    // Entropy for the guest: without it, a TCG guest can wait seconds for its RNG to initialize.
    "-object",
    "rng-random,id=rng0,filename=/dev/urandom",
    "-device",
    "virtio-rng-pci,rng=rng0",
    "-netdev",
    o.netdev,
    "-device",
    `virtio-net-pci,netdev=net0,mac=${o.mac}`,
    "-chardev",
    `file,id=serial0,path=${optValue(o.serialLog)}`,
    "-serial",
    "chardev:serial0",
    // QMP on a Unix socket in the 0700 instance directory: only the server's user reaches it.
    "-qmp",
    `unix:${optValue(o.qmpSocket)},server=on,wait=off`,
    "-pidfile",
    o.pidFile,
  ];
  if (o.sharedDir) {
    argv.push(
      "-object",
      `memory-backend-memfd,id=mem,size=${o.memoryMiB}M,share=on`,
      "-chardev",
      `socket,id=fs0,path=${optValue(o.sharedDir.socket)}`,
      "-device",
      `vhost-user-fs-pci,chardev=fs0,tag=${o.sharedDir.tag}`,
    );
  }
  return argv;
}

/** QEMU's option strings split on commas; a literal comma in a path is written as two. */
export function optValue(path: string): string {
  return path.replaceAll(",", ",,");
}

/** A locally administered unicast MAC derived from the shed name, so it is stable across boots. */
export function macForName(name: string): string {
  let h = 2166136261;
  for (const ch of Buffer.from(name, "utf8")) {
    h ^= ch;
    h = Math.imul(h, 16777619) >>> 0;
  }
  const b = [(h >>> 24) & 0xff, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return ["52", "54", ...b.map((x) => x.toString(16).padStart(2, "0"))].join(":");
}
