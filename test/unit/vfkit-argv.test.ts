import { describe, expect, it } from "vitest";
import {
  buildVfkitArgv,
  checkVfkitPath,
  MAX_SOCKET_PATH_BYTES,
  type VfkitInput,
  VZ_LIMITS,
  vfkitVsockSocketPath,
} from "../../src/backends/vz/vfkit-argv.js";
import { ShedError } from "../../src/core/errors.js";
import { parseVfkit } from "../helpers/vfkit-syntax.js";

const dir = "/Users/dev/Library/shed/vm/demo";
const base: VfkitInput = {
  binary: "/opt/homebrew/bin/vfkit",
  cpus: 2,
  memoryMiB: 2048,
  kernel: "/Users/dev/images/shed-vm-arm64/Image",
  initrd: "/Users/dev/images/shed-vm-arm64/initrd.img",
  cmdline: "root=/dev/vda rw console=hvc0 ip=192.168.64.2::192.168.64.1:255.255.255.0::eth0:off shed.agent=vsock",
  rootDisk: `${dir}/root.img`,
  configDisk: `${dir}/config.img`,
  mac: "52:54:00:12:34:56",
  vsock: [
    { port: 1024, socket: vfkitVsockSocketPath(dir, 1024) },
    { port: 1025, socket: vfkitVsockSocketPath(dir, 1025) },
  ],
  shares: [
    { tag: "workspace", dir: "/Users/dev/src/app" },
    { tag: "cred0", dir: "/Users/dev/.config/gh" },
  ],
  serialLog: `${dir}/serial.log`,
  restSocket: `${dir}/vfkit.sock`,
};

function refusal(fn: () => unknown): ShedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ShedError);
    return err as ShedError;
  }
  throw new Error("expected a refusal");
}

describe("buildVfkitArgv", () => {
  it("asks vfkit for every device in its documented syntax", () => {
    const p = parseVfkit(buildVfkitArgv(base));
    expect(p.binary).toBe(base.binary);
    expect(p.one("--cpus")).toBe("2");
    expect(p.one("--memory")).toBe("2048");
    const boot = p.bootloader();
    expect(boot.type).toBe("linux");
    expect(Object.fromEntries(boot.opts)).toEqual({ kernel: base.kernel, initrd: base.initrd, cmdline: base.cmdline });

    const byType = (t: string) => p.devices.filter((d) => d.type === t).map((d) => Object.fromEntries(d.opts));
    // The root disk comes first (the guest's /dev/vda); the config disk carries the serial the boot script reads.
    expect(byType("virtio-blk")).toEqual([{ path: base.rootDisk }, { path: base.configDisk, deviceId: "shedcfg" }]);
    expect(byType("virtio-net")).toEqual([{ nat: true, mac: base.mac }]);
    expect(byType("virtio-vsock")).toEqual([
      { port: "1024", socketURL: `${dir}/vsock-1024.sock`, connect: true },
      { port: "1025", socketURL: `${dir}/vsock-1025.sock`, connect: true },
    ]);
    expect(byType("virtio-fs")).toEqual([
      { sharedDir: "/Users/dev/src/app", mountTag: "workspace" },
      { sharedDir: "/Users/dev/.config/gh", mountTag: "cred0" },
    ]);
    expect(byType("virtio-serial")).toEqual([{ logFilePath: base.serialLog }]);
    expect(byType("virtio-rng")).toEqual([{}]);
    expect(p.devices.map((d) => d.type).sort()).toEqual(
      [
        "virtio-blk",
        "virtio-blk",
        "virtio-fs",
        "virtio-fs",
        "virtio-net",
        "virtio-rng",
        "virtio-serial",
        "virtio-vsock",
        "virtio-vsock",
      ].sort(),
    );
    expect(p.one("--restful-uri")).toBe(`unix://${dir}/vfkit.sock`);
  });

  it("turns the REST service off without a socket, and keeps no share or vsock it was not given", () => {
    const p = parseVfkit(buildVfkitArgv({ ...base, restSocket: undefined, shares: [], vsock: [] }));
    expect(p.one("--restful-uri")).toBe("none://");
    expect(p.devices.some((d) => d.type === "virtio-fs" || d.type === "virtio-vsock")).toBe(false);
  });

  it("carries a comma in the kernel command line inside its quotes, and '=' or '\"' in a device path", () => {
    const p = parseVfkit(
      buildVfkitArgv({
        ...base,
        cmdline: "root=/dev/vda console=hvc0 opt=a,b",
        shares: [{ tag: "workspace", dir: '/Users/dev/key=value/"quoted"' }],
      }),
    );
    expect(p.bootloader().opts.get("cmdline")).toBe("root=/dev/vda console=hvc0 opt=a,b");
    expect(p.devices.find((d) => d.type === "virtio-fs")?.opts.get("sharedDir")).toBe('/Users/dev/key=value/"quoted"');
  });

  it("refuses a comma in any path, naming the path and the character", () => {
    const cases: [Partial<VfkitInput>, string, string][] = [
      [{ shares: [{ tag: "workspace", dir: "/Users/dev/a,b" }] }, "/Users/dev/a,b", "shared directory (workspace)"],
      [{ kernel: "/img/ker,nel" }, "/img/ker,nel", "kernel"],
      [{ rootDisk: "/d/root,1.img" }, "/d/root,1.img", "root disk"],
      [{ configDisk: "/d/c,fg.img" }, "/d/c,fg.img", "config disk"],
      [{ serialLog: "/d/se,rial.log" }, "/d/se,rial.log", "serial log"],
      [{ vsock: [{ port: 1024, socket: "/d/v,1024.sock" }] }, "/d/v,1024.sock", "vsock socket for port 1024"],
      [{ restSocket: "/d/re,st.sock" }, "/d/re,st.sock", "REST socket"],
    ];
    for (const [over, path, what] of cases) {
      const e = refusal(() => buildVfkitArgv({ ...base, ...over }));
      expect(e.code).toBe("INVALID_REQUEST");
      expect(e.message).toContain(JSON.stringify(path));
      expect(e.message).toContain("','");
      expect(e.message).toContain(what);
      expect(e.details).toMatchObject({ path, character: "," });
      expect(e.hint).toBeTruthy();
    }
  });

  it("refuses what the bootloader's quoting and the socket URL cannot carry", () => {
    const quote = refusal(() => buildVfkitArgv({ ...base, initrd: '/img/"initrd".img' }));
    expect(quote.message).toContain(`'"'`);
    expect(quote.details).toMatchObject({ character: '"' });
    expect(refusal(() => buildVfkitArgv({ ...base, cmdline: 'root=/dev/vda x="y z"' })).message).toMatch(
      /kernel command line.*"\\""/,
    );
    const space = refusal(() => buildVfkitArgv({ ...base, restSocket: "/Users/dev/Application Support/vfkit.sock" }));
    expect(space.message).toContain('" "');
    expect(space.message).toContain("Application Support");
    for (const ch of ["%", "?", "#", "é"]) {
      const e = refusal(() => buildVfkitArgv({ ...base, vsock: [{ port: 1024, socket: `/d/a${ch}b.sock` }] }));
      expect(e.details).toMatchObject({ character: ch });
    }
    const long = `/${"x".repeat(MAX_SOCKET_PATH_BYTES)}`;
    const tooLong = refusal(() => buildVfkitArgv({ ...base, vsock: [{ port: 1024, socket: long }] }));
    expect(tooLong.message).toContain(`${MAX_SOCKET_PATH_BYTES + 1} bytes`);
    expect(tooLong.message).toContain(`at most ${MAX_SOCKET_PATH_BYTES}`);
    expect(refusal(() => buildVfkitArgv({ ...base, rootDisk: "root.img" })).message).toContain("absolute");
    expect(refusal(() => buildVfkitArgv({ ...base, serialLog: "/d/serial\n.log" })).message).toContain("U+000A");
  });

  it("refuses CPUs and memory outside VZ's limits, naming both numbers", () => {
    const cpus = refusal(() => buildVfkitArgv({ ...base, cpus: 33 }));
    expect(cpus.message).toContain("1 to 32 CPUs");
    expect(cpus.message).toContain("33");
    expect(refusal(() => buildVfkitArgv({ ...base, cpus: 0 })).message).toContain("0 were asked");
    expect(refusal(() => buildVfkitArgv({ ...base, cpus: 1.5 })).message).toContain("1.5");
    const low = refusal(() => buildVfkitArgv({ ...base, memoryMiB: 64 }));
    expect(low.message).toContain(`${VZ_LIMITS.minMemoryMiB} to ${VZ_LIMITS.maxMemoryMiB} MiB`);
    expect(low.message).toContain("64 MiB were asked");
    expect(refusal(() => buildVfkitArgv({ ...base, memoryMiB: 262145 })).message).toContain("262145");
    expect(() => buildVfkitArgv({ ...base, cpus: 32, memoryMiB: 262144 })).not.toThrow();
    expect(() => buildVfkitArgv({ ...base, cpus: 1, memoryMiB: 128 })).not.toThrow();
  });

  it("refuses a vsock port asked for twice, a bad MAC and a tag VZ would not take", () => {
    const twice = [
      { port: 1024, socket: "/d/a.sock" },
      { port: 1024, socket: "/d/b.sock" },
    ];
    expect(refusal(() => buildVfkitArgv({ ...base, vsock: twice })).message).toContain("port 1024 is asked for twice");
    expect(refusal(() => buildVfkitArgv({ ...base, mac: "52:54:00:12:34" })).message).toContain("MAC");
    const longTag = "t".repeat(36);
    expect(refusal(() => buildVfkitArgv({ ...base, shares: [{ tag: longTag, dir: "/d" }] })).message).toContain(
      longTag,
    );
  });
});

describe("checkVfkitPath", () => {
  it("names what, the path and the character", () => {
    const e = refusal(() => checkVfkitPath("/home/dev/a,b", "--local-dir"));
    expect(e.message).toBe(
      `the vz backend cannot use --local-dir "/home/dev/a,b": it contains ',', and vfkit splits its options on commas with no way to quote one`,
    );
    expect(e.details).toEqual({ field: "--local-dir", path: "/home/dev/a,b", character: "," });
    expect(() => checkVfkitPath("/home/dev/with space/and=equals", "--local-dir")).not.toThrow();
  });
});
