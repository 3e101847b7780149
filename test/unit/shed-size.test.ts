import { statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkDockerSize, dockerLimits, sizeFromLabels } from "../../src/backends/docker/size.js";
import { FirecrackerMachine } from "../../src/backends/firecracker/firecracker-machine.js";
import { instancePath } from "../../src/backends/vm/instance-dir.js";
import { type InstanceMeta, parseInstanceMeta } from "../../src/backends/vm/instance-meta.js";
import { instanceShed } from "../../src/backends/vm/instance-shed.js";
import type { VmImage } from "../../src/backends/vm/vm-image.js";
import { checkVmSize, resolveVmSize } from "../../src/backends/vm/vm-size.js";
import { VZ_LIMITS } from "../../src/backends/vz/vfkit-argv.js";
import { VzMachine } from "../../src/backends/vz/vz-machine.js";
import { sizeRequest } from "../../src/cli/size-flags.js";
import { ShedError } from "../../src/core/errors.js";
import { checkSizeRequest } from "../../src/lifecycle/size-request.js";
import { tempDir } from "../helpers/cli.js";

const GiB = 1024 ** 3;
const host = { cpus: 4, memoryBytes: 8 * GiB };

function refused(f: () => unknown): ShedError {
  try {
    f();
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error("it was not refused");
}

/** A VM image of this many bytes of root filesystem, with the kernels Firecracker and VZ look for (never booted here). */
function fakeImage(arch: "x86_64" | "arm64", rootfsBytes: number): VmImage {
  const dir = tempDir("size-image");
  // Sparse: only the length matters.
  writeFileSync(join(dir, "rootfs.ext4"), "");
  truncateSync(join(dir, "rootfs.ext4"), rootfsBytes);
  return {
    dir,
    arch,
    rootfs: join(dir, "rootfs.ext4"),
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    ...(arch === "x86_64" ? { vmlinux: join(dir, "vmlinux") } : { armImage: join(dir, "Image") }),
    manifest: {},
  };
}

describe("the size a create asks for (server side, every backend)", () => {
  it("passes whole numbers within the host and leaves unset ones unset", () => {
    expect(checkSizeRequest({ cpus: 4, memory_mib: 8192, disk_gib: 50 }, host)).toEqual({
      cpus: 4,
      memoryMiB: 8192,
      diskGiB: 50,
    });
    expect(checkSizeRequest({}, host)).toEqual({});
  });

  it("refuses a value that is not a whole number of at least 1, naming the flag and the value", () => {
    for (const [req, flag, value] of [
      [{ cpus: 1.5 }, "--cpus", "1.5"],
      [{ cpus: 0 }, "--cpus", "0"],
      [{ memory_mib: -1 }, "--memory", "-1"],
      [{ disk_gib: 2.25 }, "--disk", "2.25"],
    ] as const) {
      const err = refused(() => checkSizeRequest(req, host));
      expect(err.code).toBe("INVALID_REQUEST");
      expect(err.message).toContain(`${flag} ${value}:`);
      expect(err.message).toContain("whole number of at least 1");
    }
  });

  it("refuses more CPUs or memory than the host has, with both numbers", () => {
    const cpus = refused(() => checkSizeRequest({ cpus: 5 }, host));
    expect(cpus.message).toBe("--cpus 5 is more than this host has: 4 CPUs");
    expect(cpus.details).toMatchObject({ value: 5, host: 4 });
    const mem = refused(() => checkSizeRequest({ memory_mib: 8193 }, host));
    expect(mem.message).toBe("--memory 8193 MiB is more than this host has: 8192 MiB");
  });
});

describe("the CLI's flags", () => {
  it("sends whole numbers and refuses anything else, naming the flag and the value", () => {
    expect(sizeRequest({ cpus: "2", memory: "512", disk: "20" })).toEqual({ cpus: 2, memory_mib: 512, disk_gib: 20 });
    expect(sizeRequest({})).toEqual({});
    for (const [flags, text] of [
      [{ cpus: "1.5" }, '--cpus "1.5" is not a whole number'],
      [{ memory: "1GiB" }, '--memory "1GiB" is not a whole number'],
      [{ disk: "-3" }, '--disk "-3" is not a whole number'],
    ] as const) {
      expect(refused(() => sizeRequest(flags)).message).toBe(text);
    }
  });
});

describe("Docker", () => {
  it("turns the size into NanoCpus and Memory, and no size into no limit", () => {
    expect(dockerLimits({ cpus: 2, memoryMiB: 512 })).toEqual({ NanoCpus: 2_000_000_000, Memory: 512 * 1024 ** 2 });
    expect(dockerLimits({})).toEqual({});
  });

  it("refuses --disk (no per-volume size) and memory below the engine's minimum", () => {
    const disk = refused(() => checkDockerSize({ diskGiB: 10 }));
    expect(disk.code).toBe("NOT_SUPPORTED");
    expect(disk.message).toContain("--disk 10");
    expect(refused(() => checkDockerSize({ memoryMiB: 4 })).message).toContain("below Docker's minimum of 6 MiB");
    checkDockerSize({ cpus: 1, memoryMiB: 6 });
  });

  it("reads the size back from labels; a container without them (made before sizes) has none", () => {
    expect(sizeFromLabels({ "dev.shed.cpus": "2", "dev.shed.memory-mib": "512" })).toEqual({
      cpus: 2,
      memory_mib: 512,
    });
    expect(sizeFromLabels({ "dev.shed.managed": "true" })).toEqual({});
    expect(sizeFromLabels({ "dev.shed.cpus": "two", "dev.shed.memory-mib": "0" })).toEqual({});
  });
});

describe("VMs", () => {
  const vm = { cpus: 2, memoryBytes: GiB, diskBytes: undefined };

  it("take the server config's vm_cpus, vm_memory and vm_disk where the create names none", () => {
    expect(resolveVmSize({}, vm)).toEqual({ cpus: 2, memoryMiB: 1024, diskBytes: undefined });
    expect(resolveVmSize({}, { ...vm, diskBytes: 20 * GiB })).toEqual({
      cpus: 2,
      memoryMiB: 1024,
      diskBytes: 20 * GiB,
    });
    expect(resolveVmSize({ cpus: 1, memoryMiB: 512, diskGiB: 8 }, vm)).toEqual({
      cpus: 1,
      memoryMiB: 512,
      diskBytes: 8 * GiB,
    });
  });

  it("refuse less than 128 MiB, saying where the value came from", () => {
    const image = fakeImage("x86_64", 1024);
    const asked = refused(() => checkVmSize("qemu", { memoryMiB: 64 }, resolveVmSize({ memoryMiB: 64 }, vm), image));
    expect(asked.message).toContain("--memory 64: a qemu VM needs at least 128 MiB");
    const configured = { ...vm, memoryBytes: 100 * 1024 ** 2 };
    const fromConfig = refused(() => checkVmSize("qemu", {}, resolveVmSize({}, configured), image));
    expect(fromConfig.message).toContain("vm_memory in the server config");
    checkVmSize("qemu", { memoryMiB: 128, cpus: 1 }, resolveVmSize({ memoryMiB: 128, cpus: 1 }, vm), image);
  });

  it("on VZ, refuse more than 32 CPUs or 256 GiB", () => {
    const image = fakeImage("arm64", 1024);
    const limits = { maxCpus: VZ_LIMITS.maxCpus, maxMemoryMiB: VZ_LIMITS.maxMemoryMiB };
    const check = (size: { cpus?: number; memoryMiB?: number }) =>
      checkVmSize("vz", size, resolveVmSize(size, vm), image, limits);
    expect(refused(() => check({ cpus: 33 })).message).toContain("the vz backend takes at most 32 CPUs; 33 were asked");
    expect(refused(() => check({ memoryMiB: 262_145 })).message).toContain("at most 262144 MiB (256 GiB)");
    check({ cpus: 32, memoryMiB: 262_144 });
  });

  it("refuse a disk smaller than the image's root filesystem, with both sizes", () => {
    const image = fakeImage("x86_64", 3 * GiB);
    const err = refused(() => checkVmSize("qemu", { diskGiB: 2 }, resolveVmSize({ diskGiB: 2 }, vm), image));
    expect(err.message).toContain(
      "--disk 2: the disk would be smaller than the image's root filesystem (2 GiB < 3 GiB",
    );
    expect(err.hint).toContain("at least 3 GiB");
    checkVmSize("qemu", { diskGiB: 3 }, resolveVmSize({ diskGiB: 3 }, vm), image);
  });
});

describe("the plans each hypervisor boots from", () => {
  it("Firecracker: machine-config has the size, and the raw disk is grown to --disk", async () => {
    const dataDir = tempDir("size-fc");
    const image = fakeImage("x86_64", 64 * 1024 ** 2);
    const host = { binary: "firecracker", bridge: "shedbr0", subnet: "172.30.0.0/24" };
    const m = await FirecrackerMachine.create(
      { dataDir, name: "sized", serverId: "srv", image, cpus: 3, memoryMiB: 768, diskBytes: GiB },
      host,
    );
    const meta = m.meta();
    expect(meta).toMatchObject({ cpus: 3, memory_mib: 768, disk_bytes: GiB });
    const { requests } = FirecrackerMachine.launch(m.dir, meta, host);
    expect(requests.find((r) => r.path === "/machine-config")?.body).toEqual({
      vcpu_count: 3,
      mem_size_mib: 768,
      smt: false,
    });
    expect(statSync(instancePath(m.dir, "rawDisk")).size).toBe(GiB);
    expect(statSync(image.rootfs).size).toBe(64 * 1024 ** 2);
  });

  it("VZ: vfkit gets --cpus and --memory, and the raw disk is grown to --disk", async () => {
    const dataDir = tempDir("size-vz");
    const image = fakeImage("arm64", 64 * 1024 ** 2);
    const host = { vfkitBinary: "vfkit", credentials: [] };
    const m = await VzMachine.create(
      { dataDir, name: "sized", serverId: "srv", image, cpus: 3, memoryMiB: 768, diskBytes: 2 * GiB },
      host,
    );
    const { argv } = VzMachine.launch(m.dir, m.meta(), host);
    expect(argv.slice(argv.indexOf("--cpus"), argv.indexOf("--cpus") + 4)).toEqual(["--cpus", "3", "--memory", "768"]);
    expect(statSync(instancePath(m.dir, "rawDisk")).size).toBe(2 * GiB);
  });
});

describe("VM metadata written before sizes were recorded", () => {
  it("still reads, and the shed shows its CPUs and memory but no disk of its own size", () => {
    const old = {
      version: 1,
      name: "old",
      backend: "qemu",
      image: "/images/shed-vm-x86_64",
      arch: "x86_64",
      created_at: "2026-01-01T00:00:00.000Z",
      server_id: "srv-1",
      agent_transport: "tcp",
      ports: { exec: 40001, control: 40002 },
      hypervisor: null,
      helpers: {},
      memory_mib: 1024,
      cpus: 2,
    };
    const meta: InstanceMeta = parseInstanceMeta(JSON.parse(JSON.stringify(old)), "old/instance.json");
    expect(meta.disk_bytes).toBeUndefined();
    const shed = instanceShed(meta, false, "/data/vm/old");
    expect(shed).toMatchObject({ cpus: 2, memory_mib: 1024 });
    expect("disk_gib" in shed).toBe(false);
    const sized = instanceShed({ ...meta, disk_bytes: 20 * GiB }, false, "/data/vm/old");
    expect(sized.disk_gib).toBe(20);
  });
});
