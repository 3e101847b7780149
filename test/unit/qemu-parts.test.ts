import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildKernelCmdline, buildQemuArgv, chooseAccel, macForName } from "../../src/backends/qemu/qemu-argv.js";
import { checkQemuInstalled } from "../../src/backends/qemu/qemu-check.js";
import {
  buildPastaArgv,
  buildSlirpNetdev,
  GUEST_NET,
  NAMESERVER_IN_NS,
  netnsWrapper,
  resolvConfText,
} from "../../src/backends/qemu/qemu-network.js";
import { QmpClient, QmpLineParser } from "../../src/backends/qemu/qmp.js";
import { resolveVmImage } from "../../src/backends/vm/vm-image.js";
import { tempDir } from "../helpers/cli.js";

const tmp = (): string => tempDir("qemu-unit");

const baseOpts = {
  name: "demo",
  accel: "tcg" as const,
  memoryMiB: 1024,
  cpus: 2,
  kernel: "/img/vmlinuz",
  initrd: "/img/initrd.img",
  cmdline: "root=/dev/vda",
  rootDisk: "/d/vm/demo/root.qcow2",
  configDisk: "/d/vm/demo/config.img",
  serialLog: "/d/vm/demo/serial.log",
  qmpSocket: "/d/vm/demo/qmp.sock",
  pidFile: "/d/vm/demo/hypervisor.pid",
  netdev: "user,id=net0",
  mac: "52:54:00:00:00:01",
};

function optAfter(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1] as string] : []));
}

describe("QEMU argv", () => {
  it("q35 with the chosen accelerator, no defaults, no display, and each device wired to its file", () => {
    const argv = buildQemuArgv(baseOpts);
    expect(argv[0]).toBe("qemu-system-x86_64");
    expect(optAfter(argv, "-machine")).toEqual(["q35"]);
    expect(optAfter(argv, "-accel")).toEqual(["tcg"]);
    expect(optAfter(argv, "-cpu")).toEqual(["max"]);
    expect(argv).toContain("-nodefaults");
    expect(optAfter(argv, "-display")).toEqual(["none"]);
    expect(optAfter(argv, "-m")).toEqual(["1024"]);
    expect(optAfter(argv, "-smp")).toEqual(["2"]);
    expect(optAfter(argv, "-qmp")).toEqual(["unix:/d/vm/demo/qmp.sock,server=on,wait=off"]);
    expect(optAfter(argv, "-pidfile")).toEqual(["/d/vm/demo/hypervisor.pid"]);
    const drives = optAfter(argv, "-drive");
    expect(drives[0]).toMatch(/^if=none,id=root,file=\/d\/vm\/demo\/root\.qcow2,format=qcow2/);
    expect(drives[1]).toMatch(/^if=none,id=shedcfg,file=\/d\/vm\/demo\/config\.img,format=raw/);
    expect(optAfter(argv, "-device")).toContain("virtio-blk-pci,drive=shedcfg,serial=shedcfg");
    expect(optAfter(argv, "-netdev")).toEqual(["user,id=net0"]);
    expect(optAfter(argv, "-chardev")).toEqual(["file,id=serial0,path=/d/vm/demo/serial.log"]);
    expect(argv.join(" ")).not.toMatch(/-nic|-net /);
    expect(buildQemuArgv({ ...baseOpts, accel: "kvm" })).toEqual(
      expect.arrayContaining(["-accel", "kvm", "-cpu", "host"]),
    );
  });

  it("doubles commas in paths so a path cannot add QEMU options", () => {
    const argv = buildQemuArgv({ ...baseOpts, rootDisk: "/d/a,format=raw/root.qcow2" });
    expect(optAfter(argv, "-drive")[0]).toContain("file=/d/a,,format=raw/root.qcow2,format=qcow2");
  });

  it("kernel command line per the contract, agent optional; no secret anywhere", () => {
    expect(buildKernelCmdline({ net: GUEST_NET, agent: "tcp" })).toBe(
      "root=/dev/vda rw console=ttyS0 ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off:10.0.2.3 panic=-1 shed.agent=tcp",
    );
    expect(buildKernelCmdline({ net: GUEST_NET, agent: undefined })).not.toContain("shed.agent");
  });

  it("accel is kvm only when the device can be opened", () => {
    const d = tmp();
    expect(chooseAccel(join(d, "no-kvm"))).toBe("tcg");
    writeFileSync(join(d, "kvm"), "");
    expect(chooseAccel(join(d, "kvm"))).toBe("kvm");
  });

  it("stable locally administered MACs, different per name", () => {
    expect(macForName("a")).toBe(macForName("a"));
    expect(macForName("a")).not.toBe(macForName("b"));
    expect(macForName("a")).toMatch(/^52:54(:[0-9a-f]{2}){4}$/);
  });
});

describe("guest network argv", () => {
  const forwards = [
    { hostPort: 40001, guestPort: 1024 },
    { hostPort: 40002, guestPort: 1026 },
  ];

  it("slirp forwards the agent ports from the namespace's loopback only", () => {
    expect(buildSlirpNetdev(forwards)).toBe(
      "user,id=net0,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,ipv6=off," +
        "hostfwd=tcp:127.0.0.1:40001-:1024,hostfwd=tcp:127.0.0.1:40002-:1026",
    );
  });

  it("QEMU runs in its own user, network and mount namespace, with a resolv.conf naming pasta's DNS forward", () => {
    const w = netnsWrapper("/d/resolv.conf");
    expect(w.slice(0, 6)).toEqual(["unshare", "--user", "--map-root-user", "--net", "--mount", "--"]);
    // The file is a positional parameter of a fixed script, never part of it.
    expect(w.slice(6, 8)).toEqual(["sh", "-c"]);
    expect(w[8]).not.toContain("/d/resolv.conf");
    expect(w.at(-1)).toBe("/d/resolv.conf");
    expect(resolvConfText()).toBe(`nameserver ${NAMESERVER_IN_NS}\n`);
  });

  it("pasta: no gateway mapping, nothing from the namespace to the host, host side on 127.0.0.1 only", () => {
    const argv = buildPastaArgv({ targetPid: 1234, forwards, logFile: "/d/net.log", uid: 0 });
    expect(argv[0]).toBe("pasta");
    expect(argv).toContain("--no-map-gw");
    expect(argv).toContain("--foreground");
    expect(optAfter(argv, "--dns-forward")).toEqual([NAMESERVER_IN_NS]);
    expect(optAfter(argv, "--tcp-ns")).toEqual(["none"]);
    expect(optAfter(argv, "--udp-ns")).toEqual(["none"]);
    expect(optAfter(argv, "--udp-ports")).toEqual(["none"]);
    expect(optAfter(argv, "--tcp-ports")).toEqual(["127.0.0.1/40001:40001", "127.0.0.1/40002:40002"]);
    expect(optAfter(argv, "--runas")).toEqual(["0"]);
    expect(argv.at(-1)).toBe("1234");
    expect(optAfter(buildPastaArgv({ targetPid: 1, forwards: [], logFile: "/l", uid: 1000 }), "--tcp-ports")).toEqual([
      "none",
    ]);
  });
});

describe("fail-fast checks", () => {
  it("missing QEMU names the packages to install", () => {
    const empty = tmp();
    expect(() => checkQemuInstalled(empty)).toThrow(/qemu-system-x86_64, qemu-img, pasta, unshare, not found/);
    try {
      checkQemuInstalled(empty);
    } catch (err) {
      expect((err as { hint: string }).hint).toBe(
        "install them on the server host: apt-get install qemu-system-x86 qemu-utils passt util-linux",
      );
      expect((err as { code: string }).code).toBe("BACKEND_NOT_ENABLED");
    }
  });

  it("a missing image says to run npm run build-vm-image", () => {
    const d = tmp();
    mkdirSync(join(d, "shed-vm-x86_64"));
    writeFileSync(join(d, "shed-vm-x86_64", "vmlinuz"), "");
    try {
      resolveVmImage(d, "x86_64");
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/is missing rootfs\.ext4, initrd\.img, manifest\.json/);
      expect((err as { hint: string }).hint).toContain("npm run build-vm-image");
      expect((err as { code: string }).code).toBe("IMAGE_NOT_FOUND");
    }
  });
});

describe("QMP", () => {
  it("parses messages split across chunks and several in one chunk", () => {
    const p = new QmpLineParser();
    expect(p.push('{"return": {}}\r\n{"event": "STOP", "da')).toEqual([{ return: {} }]);
    expect(p.push('ta": {}}\r')).toEqual([]);
    expect(p.push('\n\r\n{"return": 1}\r\n')).toEqual([{ event: "STOP", data: {} }, { return: 1 }]);
    expect(() => p.push("not json\n")).toThrow();
  });

  it("negotiates, runs commands, delivers events, and reports errors against a stand-in QEMU", async () => {
    const path = join(tmp(), "qmp.sock");
    const seen: string[] = [];
    const server = await standInQmp(path, (cmd, sock) => {
      seen.push(cmd.execute as string);
      if (cmd.execute === "qmp_capabilities") return { return: {} };
      if (cmd.execute === "query-status") return { return: { status: "running", singlestep: false, running: true } };
      if (cmd.execute === "system_powerdown") {
        // QEMU answers, then emits the event; sent in pieces to exercise the parser on a real socket.
        const msg = `${JSON.stringify({ return: {} })}\r\n${JSON.stringify({ event: "POWERDOWN", timestamp: { seconds: 1, microseconds: 2 } })}\r\n`;
        sock.write(msg.slice(0, 7));
        setImmediate(() => sock.write(msg.slice(7)));
        return undefined;
      }
      if (cmd.execute === "quit") {
        sock.end(`${JSON.stringify({ return: {} })}\r\n`);
        return undefined;
      }
      return { error: { class: "CommandNotFound", desc: `The command ${cmd.execute} has not been found` } };
    });
    try {
      const qmp = await QmpClient.connect(path);
      expect(await qmp.queryStatus()).toEqual({ status: "running", running: true });
      const ev = qmp.waitForEvent("POWERDOWN", 5_000);
      await qmp.systemPowerdown();
      expect((await ev).event).toBe("POWERDOWN");
      await expect(qmp.execute("nope")).rejects.toThrow(/nope: CommandNotFound/);
      await qmp.quit();
      await qmp.closed();
      await expect(qmp.queryStatus()).rejects.toThrow(/closed/);
      expect(seen).toEqual(["qmp_capabilities", "query-status", "system_powerdown", "nope", "quit"]);
    } finally {
      server.close();
    }
  });

  it("a socket nobody listens on is a BACKEND_ERROR naming it", async () => {
    const path = join(tmp(), "none.sock");
    await expect(QmpClient.connect(path, 1_000)).rejects.toThrow(/QEMU control socket .*none\.sock: connect failed/);
  });
});

async function standInQmp(
  path: string,
  answer: (cmd: Record<string, unknown>, sock: Socket) => Record<string, unknown> | undefined,
): Promise<Server> {
  const server = createServer((sock) => {
    sock.write(
      `${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } })}\r\n`,
    );
    const parser = new QmpLineParser();
    sock.on("data", (chunk) => {
      for (const cmd of parser.push(chunk)) {
        const r = answer(cmd as Record<string, unknown>, sock);
        if (r) sock.write(`${JSON.stringify(r)}\r\n`);
      }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}
