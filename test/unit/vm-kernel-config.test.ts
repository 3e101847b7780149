// Time budget: under 5 s (reads the built image's files; boots nothing).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";

/**
 * The x86_64 VM image's kernel (npm run build-vm-image) has every option the VM backends rely on,
 * built in or as a module that is where it is needed: in the initramfs when the root disk needs it
 * (before / is mounted), in the root filesystem when /etc/shed/boot loads it. docs/vm-kernel.md
 * says why each is needed and why Debian's cloud kernel boots under Firecracker without
 * VIRTIO_MMIO_CMDLINE_DEVICES. A missing image fails the test: it is part of the build.
 */

const IMAGE_DIR = join(process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images", "shed-vm-x86_64");

/** Options that must be built in: nothing can load them (early boot, the console, the boot protocol). */
const BUILT_IN: Record<string, string> = {
  BLK_DEV_INITRD: "the initramfs that loads the virtio drivers",
  RD_GZIP: "the initramfs is gzip-compressed (image/vm/initramfs/conf.d/shed.conf)",
  DEVTMPFS: "/dev without udev in the root filesystem",
  SERIAL_8250_CONSOLE: "console=ttyS0, the boot log the host shows when a boot fails",
  UNIX98_PTYS: "the agent's PTYs",
  UNIX: "the agent's Unix sockets (vsock mode)",
  INET: "the agent's TCP listener (tcp mode)",
  TMPFS: "/run, where the secret lives",
  ACPI: "Firecracker >= 1.8 and QEMU microvm describe virtio-mmio devices in ACPI tables; the power button",
  PCI: "QEMU q35's virtio-pci; Firecracker needs it for ACPI initialisation",
  KVM_GUEST: "Firecracker's x86_64 minimal boot requirement (kvm-clock)",
  SERIO_I8042: "Firecracker's clean shutdown (SendCtrlAltDel)",
  KEYBOARD_ATKBD: "Firecracker's clean shutdown (SendCtrlAltDel)",
};

/** Options needed before the root filesystem is mounted: built in, or a module inside the initramfs. */
const BEFORE_ROOT: Record<string, string> = {
  VIRTIO: "virtio",
  VIRTIO_PCI: "virtio_pci",
  VIRTIO_MMIO: "virtio_mmio",
  VIRTIO_BLK: "virtio_blk",
  EXT4_FS: "ext4",
};

/** Options /etc/shed/boot loads from the root filesystem: built in, or a module there. */
const AFTER_ROOT: Record<string, string> = {
  VIRTIO_NET: "virtio_net",
  HW_RANDOM_VIRTIO: "virtio-rng",
  VSOCKETS: "vsock",
  VIRTIO_VSOCKETS: "vmw_vsock_virtio_transport",
  FUSE_FS: "fuse",
  VIRTIO_FS: "virtiofs",
  ACPI_BUTTON: "button",
  INPUT_EVDEV: "evdev",
};

function imageFile(name: string): string {
  const path = join(IMAGE_DIR, name);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: build the VM image first (npm run build-vm-image; SHED_VM_IMAGES says where)`);
  }
  return path;
}

function kernelConfig(): Map<string, string> {
  const config = new Map<string, string>();
  for (const line of readFileSync(imageFile("kernel.config"), "utf8").split("\n")) {
    const m = /^CONFIG_([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) config.set(m[1] as string, m[2] as string);
  }
  return config;
}

/** Paths in a newc cpio archive (as mkinitramfs writes), from offset; returns where it ended. */
function readCpio(buf: Buffer, offset: number, out: string[]): number {
  let at = offset;
  for (;;) {
    const magic = buf.toString("latin1", at, at + 6);
    if (magic !== "070701" && magic !== "070702") throw new Error(`initrd: bad cpio header at byte ${at}`);
    const field = (i: number) => Number.parseInt(buf.toString("latin1", at + 6 + i * 8, at + 14 + i * 8), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    const name = buf.toString("utf8", at + 110, at + 110 + nameSize - 1);
    at = Math.ceil((at + 110 + nameSize) / 4) * 4;
    at = Math.ceil((at + fileSize) / 4) * 4;
    if (name === "TRAILER!!!") return at;
    out.push(name);
  }
}

/** Every path in the initramfs: uncompressed early archives (if any), then the compressed main one. */
function initrdPaths(): string[] {
  const buf = readFileSync(imageFile("initrd.img"));
  const paths: string[] = [];
  let at = 0;
  while (buf.toString("latin1", at, at + 6).startsWith("0707")) {
    at = readCpio(buf, at, paths);
    while (at < buf.length && buf[at] === 0) at++;
  }
  const main = gunzipSync(buf.subarray(at));
  readCpio(main, 0, paths);
  return paths;
}

/** The module file names the root filesystem's modules.dep lists, read with debugfs (no mount). */
function rootfsModules(kernelVersion: string): string[] {
  const dep = execFileSync(
    "debugfs",
    ["-R", `cat /usr/lib/modules/${kernelVersion}/modules.dep`, imageFile("rootfs.ext4")],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return dep
    .split("\n")
    .map((line) => line.split(":")[0] as string)
    .filter((p) => p.length > 0);
}

const moduleName = (path: string) => (path.split("/").pop() as string).replace(/\.ko(\.(xz|zst|gz))?$/, "");
const hasModule = (paths: string[], name: string) =>
  paths.some((p) => /\.ko(\.(xz|zst|gz))?$/.test(p) && moduleName(p).replace(/-/g, "_") === name.replace(/-/g, "_"));

describe("the VM image's kernel", () => {
  const manifest = () =>
    JSON.parse(readFileSync(imageFile("manifest.json"), "utf8")) as { arch: string; kernel_version: string };

  it("is the x86_64 image, with the files each hypervisor boots", () => {
    expect(manifest().arch).toBe("x86_64");
    for (const name of ["rootfs.ext4", "vmlinuz", "initrd.img", "vmlinux", "kernel.config"]) imageFile(name);
    // Firecracker loads an uncompressed ELF kernel.
    expect(readFileSync(imageFile("vmlinux")).subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  });

  it("builds in what nothing could load", () => {
    const config = kernelConfig();
    const missing = Object.entries(BUILT_IN)
      .filter(([opt]) => config.get(opt) !== "y")
      .map(([opt, why]) => `CONFIG_${opt}=${config.get(opt) ?? "(unset)"}: needed built in for ${why}`);
    expect(missing).toEqual([]);
  });

  it("has what the root disk needs before / is mounted, built in or in the initramfs", () => {
    const config = kernelConfig();
    const initrd = initrdPaths();
    expect(initrd).toContain("init");
    const missing: string[] = [];
    for (const [opt, mod] of Object.entries(BEFORE_ROOT)) {
      const v = config.get(opt);
      if (v === "y") continue;
      if (v !== "m") missing.push(`CONFIG_${opt} is ${v ?? "unset"}`);
      else if (!hasModule(initrd, mod)) missing.push(`CONFIG_${opt}=m but ${mod}.ko is not in initrd.img`);
    }
    expect(missing).toEqual([]);
  });

  it("has what the boot service loads, built in or as a module in the root filesystem", () => {
    const config = kernelConfig();
    const modules = rootfsModules(manifest().kernel_version);
    expect(modules.length).toBeGreaterThan(100);
    const missing: string[] = [];
    for (const [opt, mod] of Object.entries(AFTER_ROOT)) {
      const v = config.get(opt);
      if (v === "y") continue;
      if (v !== "m") missing.push(`CONFIG_${opt} is ${v ?? "unset"}`);
      else if (!hasModule(modules, mod)) missing.push(`CONFIG_${opt}=m but ${mod}.ko is not in the root filesystem`);
    }
    expect(missing).toEqual([]);
  });

  it("matches the modules the boot service loads by name", () => {
    // /etc/shed/boot names modules for modprobe; each must be one this test checks.
    const boot = readFileSync(join(import.meta.dirname, "../../image/vm/rootfs/etc/shed/boot"), "utf8");
    const named = [...boot.matchAll(/modules="([^"]*)"/g)]
      .flatMap((m) => (m[1] as string).split(/\s+/))
      .filter((n) => n !== "" && n !== "$modules");
    const known = new Set(Object.values(AFTER_ROOT).map((n) => n.replace(/-/g, "_")));
    expect(named.length).toBeGreaterThan(3);
    expect(named.filter((n) => !known.has(n))).toEqual([]);
  });
});
