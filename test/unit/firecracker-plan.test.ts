import { describe, expect, it } from "vitest";
import {
  buildFirecrackerPlan,
  CONFIG_DRIVE_ID,
  type FirecrackerPlanInput,
  type FirecrackerRequest,
  firecrackerArgv,
  firecrackerBootArgs,
  firecrackerInstanceId,
  ROOT_DRIVE_ID,
  SEND_CTRL_ALT_DEL,
} from "../../src/backends/firecracker/firecracker-plan.js";
import { buildKernelCmdline } from "../../src/backends/qemu/qemu-argv.js";
import { buildVmKernelCmdline } from "../../src/backends/vm/kernel-cmdline.js";
import { ShedError } from "../../src/core/errors.js";
import { assertFirecrackerRequest, checkFirecrackerRequest, loadFirecrackerSpec } from "../helpers/firecracker-spec.js";

const net = { address: "172.30.0.5", gateway: "172.30.0.1", netmask: "255.255.255.0", dns: "1.1.1.1" };
const dir = "/var/lib/shed/vm/demo";

function input(over: Partial<FirecrackerPlanInput> = {}): FirecrackerPlanInput {
  return {
    kernel: "/var/lib/shed/images/base/vmlinux",
    initrd: "/var/lib/shed/images/base/initrd.img",
    bootArgs: firecrackerBootArgs(net),
    rootfs: `${dir}/rootfs.ext4`,
    configDisk: `${dir}/config.img`,
    cpus: 2,
    memoryMiB: 2048,
    tap: "shedtap7",
    mac: "06:00:ac:1e:00:05",
    vsockUds: `${dir}/vsock.sock`,
    cid: 7,
    ...over,
  };
}

function shedError(fn: () => unknown): ShedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ShedError);
    return err as ShedError;
  }
  throw new Error("expected a ShedError, nothing was thrown");
}

describe("the Firecracker plan against Firecracker's API description", () => {
  it("the fixture is Firecracker's description and has the operations the plan uses", () => {
    const spec = loadFirecrackerSpec();
    expect(spec.version).toMatch(/^1\.\d+/);
    for (const p of [
      "/machine-config",
      "/boot-source",
      "/drives/{drive_id}",
      "/network-interfaces/{iface_id}",
      "/vsock",
    ]) {
      expect(spec.paths[p]?.put, p).toBeDefined();
    }
    expect(spec.definitions.Drive?.required).toEqual(["drive_id", "is_root_device"]);
  });

  it("every request of the plan conforms, with and without an initrd", () => {
    for (const plan of [buildFirecrackerPlan(input()), buildFirecrackerPlan(input({ initrd: undefined }))]) {
      for (const req of plan) expect(checkFirecrackerRequest(req), `${req.method} ${req.path}`).toEqual([]);
    }
  });

  it("configures the machine, boot source, drives, network and vsock in that order, then starts", () => {
    const plan = buildFirecrackerPlan(input());
    expect(plan.map((r) => `${r.method} ${r.path}`)).toEqual([
      "PUT /machine-config",
      "PUT /boot-source",
      `PUT /drives/${ROOT_DRIVE_ID}`,
      `PUT /drives/${CONFIG_DRIVE_ID}`,
      "PUT /network-interfaces/eth0",
      "PUT /vsock",
      "PUT /actions",
    ]);
    const [machine, boot, root, config, eth0, vsock, start] = plan as FirecrackerRequest[];
    expect(machine?.body).toEqual({ vcpu_count: 2, mem_size_mib: 2048, smt: false });
    expect(boot?.body).toEqual({
      kernel_image_path: "/var/lib/shed/images/base/vmlinux",
      initrd_path: "/var/lib/shed/images/base/initrd.img",
      boot_args: firecrackerBootArgs(net),
    });
    expect(root?.body).toMatchObject({ path_on_host: `${dir}/rootfs.ext4`, is_root_device: true, is_read_only: false });
    expect(config?.body).toEqual({
      drive_id: CONFIG_DRIVE_ID,
      path_on_host: `${dir}/config.img`,
      is_root_device: false,
      is_read_only: true,
    });
    expect(eth0?.body).toEqual({ iface_id: "eth0", host_dev_name: "shedtap7", guest_mac: "06:00:ac:1e:00:05" });
    expect(vsock?.body).toEqual({ guest_cid: 7, uds_path: `${dir}/vsock.sock` });
    expect(start?.body).toEqual({ action_type: "InstanceStart" });
  });

  it("without an initrd the boot source has no initrd_path key at all (not an undefined one)", () => {
    const boot = buildFirecrackerPlan(input({ initrd: undefined }))[1];
    expect(Object.keys(boot?.body ?? {}).sort()).toEqual(["boot_args", "kernel_image_path"]);
  });

  it("SEND_CTRL_ALT_DEL conforms and is the SendCtrlAltDel action", () => {
    expect(checkFirecrackerRequest(SEND_CTRL_ALT_DEL)).toEqual([]);
    expect(SEND_CTRL_ALT_DEL).toEqual({ method: "PUT", path: "/actions", body: { action_type: "SendCtrlAltDel" } });
    expect(Object.isFrozen(SEND_CTRL_ALT_DEL.body)).toBe(true);
  });

  it("no request carries a secret: the config disk goes in by path, never by contents", () => {
    const text = JSON.stringify(buildFirecrackerPlan(input()));
    expect(text).not.toMatch(/[0-9a-fA-F]{32,}/);
    expect(text.toLowerCase()).not.toContain("secret");
    expect(text).toContain(`"path_on_host":"${dir}/config.img"`);
  });

  it("refuses input Firecracker would refuse, naming the field", () => {
    const cases: [Partial<FirecrackerPlanInput>, RegExp][] = [
      [{ cpus: 0 }, /cpus "0"/],
      [{ cpus: 33 }, /cpus "33"/],
      [{ cpus: 1.5 }, /cpus/],
      [{ memoryMiB: 0 }, /memoryMiB/],
      [{ cid: 2 }, /cid "2"/],
      [{ tap: "a-tap-name-longer-than-15" }, /tap/],
      [{ mac: "06:00:ac:1e:00" }, /mac/],
      [{ rootfs: "rootfs.ext4" }, /rootfs "rootfs.ext4" must be an absolute path/],
      [{ vsockUds: `/${"x".repeat(120)}` }, /vsockUds .* at most 107/],
      [{ bootArgs: " " }, /bootArgs/],
    ];
    for (const [over, message] of cases) {
      const err = shedError(() => buildFirecrackerPlan(input(over)));
      expect(err.code).toBe("INTERNAL");
      expect(err.message).toMatch(message);
      expect(err.hint).toBeTruthy();
    }
  });
});

describe("the spec checker itself", () => {
  const ok = { method: "PUT", path: "/drives/rootfs", body: { drive_id: "rootfs", is_root_device: true } };

  it("accepts a minimal valid request", () => {
    expect(checkFirecrackerRequest(ok)).toEqual([]);
  });

  it.each([
    ["a missing required field", { ...ok, body: { drive_id: "rootfs" } }, /missing required field is_root_device/],
    ["an unknown field", { ...ok, body: { ...ok.body, serial: "shedcfg" } }, /field serial is not defined by Drive/],
    ["an unknown path", { ...ok, path: "/disks/rootfs" }, /no path template/],
    ["a path with a trailing part", { ...ok, path: "/drives/rootfs/extra" }, /no path template/],
    ["a method the path lacks", { ...ok, method: "POST" }, /has no POST/],
    ["a wrong type", { ...ok, body: { ...ok.body, is_root_device: "true" } }, /is_root_device: expected a boolean/],
    [
      "a value outside an enum",
      { ...ok, body: { ...ok.body, cache_type: "WriteBack" } },
      /not one of "Unsafe", "Writeback"/,
    ],
    ["a path id that differs from the body's", { ...ok, path: "/drives/config" }, /drive_id: "rootfs" differs/],
    ["a missing body", { method: "PUT", path: "/vsock" }, /requires a body/],
    [
      "an unknown field inside a $ref'd object",
      { ...ok, body: { ...ok.body, rate_limiter: { bandwidth: { size: 1, refill_time: 1, burst: 2 } } } },
      /rate_limiter\.bandwidth: field burst is not defined by TokenBucket/,
    ],
    [
      "a number below the minimum",
      { method: "PUT", path: "/vsock", body: { guest_cid: 2, uds_path: "/v" } },
      /below the minimum 3/,
    ],
    [
      "a number above the maximum",
      { method: "PUT", path: "/machine-config", body: { vcpu_count: 33, mem_size_mib: 128 } },
      /above the maximum 32/,
    ],
    [
      "a fraction where an integer is due",
      { method: "PUT", path: "/machine-config", body: { vcpu_count: 1, mem_size_mib: 1.5 } },
      /expected an integer/,
    ],
    ["a wrong action", { method: "PUT", path: "/actions", body: { action_type: "Start" } }, /not one of/],
    [
      "a network interface named differently in path and body",
      { method: "PUT", path: "/network-interfaces/eth1", body: { iface_id: "eth0", host_dev_name: "tap0" } },
      /iface_id: "eth0" differs/,
    ],
  ])("rejects %s", (_what, req, message) => {
    const problems = checkFirecrackerRequest(req);
    expect(problems.join("\n")).toMatch(message);
    expect(() => assertFirecrackerRequest(req)).toThrow(/not a valid Firecracker request/);
  });

  it("allows extra fields only where the schema says additionalProperties (MMDS contents)", () => {
    expect(checkFirecrackerRequest({ method: "PUT", path: "/mmds", body: { anything: { at: "all" } } })).toEqual([]);
  });
});

describe("the Firecracker boot arguments", () => {
  const args = firecrackerBootArgs(net);

  it("carry the full ip= argument, the console on ttyS0, the agent on vsock and the config disk device", () => {
    const words = args.split(" ");
    expect(words).toContain("ip=172.30.0.5::172.30.0.1:255.255.255.0::eth0:off:1.1.1.1");
    expect(words.slice(0, 3)).toEqual(["root=/dev/vda", "rw", "console=ttyS0"]);
    expect(words).toContain("shed.cfgdev=vdb");
    expect(words.at(-1)).toBe("shed.agent=vsock");
  });

  it("carry Firecracker's guest arguments: exit on reboot and panic, no PCI probing, a quick i8042", () => {
    const words = args.split(" ");
    for (const w of ["reboot=k", "panic=-1", "pci=off", "i8042.noaux", "i8042.nomux", "i8042.nopnp", "i8042.dumbkbd"]) {
      expect(words).toContain(w);
    }
    // Firecracker's defaults that would break this image: no modules, no serial console.
    expect(words).not.toContain("nomodule");
    expect(args).not.toMatch(/8250\.nr_uarts=0/);
  });

  it("put extra words before shed.agent=", () => {
    const words = firecrackerBootArgs(net, ["quiet"]).split(" ");
    expect(words.slice(-2)).toEqual(["quiet", "shed.agent=vsock"]);
  });
});

describe("the shared VM kernel command line", () => {
  it("is exactly the line QEMU built before it moved here", () => {
    for (const agent of ["tcp", "vsock", undefined] as const) {
      expect(buildVmKernelCmdline({ net, agent, console: "ttyS0" })).toBe(buildKernelCmdline({ net, agent }));
    }
  });

  it("has the documented shape", () => {
    expect(buildVmKernelCmdline({ net, agent: "tcp", console: "hvc0", extra: ["a=1", "b"] })).toBe(
      "root=/dev/vda rw console=hvc0 ip=172.30.0.5::172.30.0.1:255.255.255.0::eth0:off:1.1.1.1 panic=-1 a=1 b shed.agent=tcp",
    );
  });

  it.each([
    ["net.address", { net: { ...net, address: "172.30.0.5 init=/bin/sh" }, console: "ttyS0" }],
    ["net.dns", { net: { ...net, dns: "" }, console: "ttyS0" }],
    ["net.gateway", { net: { ...net, gateway: "fe80::1" }, console: "ttyS0" }],
    ["console", { net, console: "ttyS0\n" }],
    ["extra[1]", { net, console: "ttyS0", extra: ["ok", "two words"] }],
  ])("refuses a value in %s that would split or shift the line", (field, o) => {
    const err = shedError(() => buildVmKernelCmdline(o));
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toContain(`field ${field} `);
  });

  it("refuses a line longer than the kernel keeps", () => {
    const err = shedError(() => buildVmKernelCmdline({ net, console: "ttyS0", extra: ["x".repeat(2100)] }));
    expect(err.message).toMatch(/keeps only 2048/);
  });
});

describe("the Firecracker argv", () => {
  it("is the binary, the API socket and the id, as separate words", () => {
    expect(firecrackerArgv({ binary: "/usr/bin/firecracker", apiSock: `${dir}/api.sock`, id: "shed-demo" })).toEqual([
      "/usr/bin/firecracker",
      "--api-sock",
      `${dir}/api.sock`,
      "--id",
      "shed-demo",
    ]);
  });

  it("refuses an id Firecracker would refuse (letters, digits and '-', 1 to 64)", () => {
    for (const id of ["", "shed_demo", "shed demo", "a".repeat(65), "shed.demo"]) {
      const err = shedError(() => firecrackerArgv({ binary: "/usr/bin/firecracker", apiSock: "/r/api.sock", id }));
      expect(err.message).toContain("instance id");
    }
  });

  it("refuses an API socket path too long for a Unix socket", () => {
    const err = shedError(() =>
      firecrackerArgv({ binary: "/usr/bin/firecracker", apiSock: `/${"d".repeat(110)}/api.sock`, id: "shed-x" }),
    );
    expect(err.message).toMatch(/apiSock/);
    expect(err.hint).toMatch(/shorter data_dir/);
  });

  it("derives a valid id from any shed name", () => {
    expect(firecrackerInstanceId("demo")).toBe("shed-demo");
    const longest = `a${"b".repeat(62)}`;
    expect(firecrackerInstanceId(longest)).toBe(longest);
    for (const name of ["demo", longest, "odd_name.x", ""]) {
      expect(firecrackerInstanceId(name)).toMatch(/^[A-Za-z0-9-]{1,64}$/);
    }
  });
});
