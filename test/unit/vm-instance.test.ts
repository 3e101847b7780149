import { spawn } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_DISK_SIZE, readConfigDisk, writeConfigDisk } from "../../src/backends/vm/config-disk.js";
import { createInstanceDir, instancePath, listInstanceNames } from "../../src/backends/vm/instance-dir.js";
import {
  INSTANCE_META_VERSION,
  type InstanceMeta,
  parseInstanceMeta,
  readInstanceMeta,
  writeInstanceMeta,
} from "../../src/backends/vm/instance-meta.js";
import { allocateLoopbackPorts, releasePending } from "../../src/backends/vm/ports.js";
import {
  isAlive,
  killProcess,
  readProcStartTime,
  reattach,
  signalProcess,
  spawnDetached,
  waitForExit,
} from "../../src/backends/vm/process.js";
import { isLoopbackTcpListening, loopbackPortSpeaks, tailFile } from "../../src/backends/vm/wait.js";
import { tempDir } from "../helpers/cli.js";

const tempDataDir = (): string => tempDir("vm-unit");

function sampleMeta(name: string, over: Partial<InstanceMeta> = {}): InstanceMeta {
  return {
    version: 1,
    name,
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
    ...over,
  };
}

describe("instance directory", () => {
  it("is made 0700 under <data_dir>/vm/, also when it existed with a wider mode", () => {
    const data = tempDataDir();
    const dir = createInstanceDir(data, "alpha");
    expect(dir).toBe(join(data, "vm", "alpha"));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(data, "vm")).mode & 0o777).toBe(0o700);
    chmodSync(dir, 0o755);
    createInstanceDir(data, "alpha");
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it("refuses an invalid name and a data_dir whose socket paths would be too long", () => {
    const data = tempDataDir();
    expect(() => createInstanceDir(data, "../etc")).toThrow(/invalid shed name/);
    expect(() => createInstanceDir(join(data, "x".repeat(80)), "a")).toThrow(/Unix sockets allow at most 107/);
  });

  it("lists only valid shed names that are directories", () => {
    const data = tempDataDir();
    createInstanceDir(data, "b");
    createInstanceDir(data, "a");
    writeFileSync(join(data, "vm", "c"), "");
    writeFileSync(join(data, "vm", "Not-A-Name"), "");
    expect(listInstanceNames(data)).toEqual(["a", "b"]);
  });
});

describe("instance metadata", () => {
  it("round-trips and leaves no temp files, 0600", () => {
    const dir = createInstanceDir(tempDataDir(), "m");
    writeInstanceMeta(dir, sampleMeta("m"));
    writeInstanceMeta(dir, sampleMeta("m", { cpus: 4 }));
    expect(readInstanceMeta(dir)?.cpus).toBe(4);
    expect(readdirSync(dir)).toEqual(["instance.json"]);
    expect(statSync(instancePath(dir, "meta")).mode & 0o777).toBe(0o600);
  });

  it("is undefined when absent, and a damaged file is an error naming the file", () => {
    const dir = createInstanceDir(tempDataDir(), "m");
    expect(readInstanceMeta(dir)).toBeUndefined();
    writeFileSync(instancePath(dir, "meta"), '{"version":1,"name":');
    expect(() => readInstanceMeta(dir)).toThrow(/instance\.json is not valid: it is not JSON/);
    writeFileSync(instancePath(dir, "meta"), JSON.stringify({ ...sampleMeta("m"), cpus: "two" }));
    expect(() => readInstanceMeta(dir)).toThrow(/cpus/);
  });

  it("refuses a newer version and a document without one", () => {
    expect(INSTANCE_META_VERSION).toBe(1);
    expect(() => parseInstanceMeta({ ...sampleMeta("m"), version: 2 }, "f")).toThrow(
      /version 2; this shed-server reads up to version 1/,
    );
    const { version: _v, ...noVersion } = sampleMeta("m");
    expect(() => parseInstanceMeta(noVersion, "f")).toThrow(/no version field/);
  });

  it("an interrupted write leaves the previous document whole", () => {
    const dir = createInstanceDir(tempDataDir(), "m");
    writeInstanceMeta(dir, sampleMeta("m"));
    // A writer that died after creating its temp file: the reader still sees the complete old file.
    writeFileSync(`${instancePath(dir, "meta")}.999.abc.tmp`, '{"version":1,"na');
    expect(readInstanceMeta(dir)?.name).toBe("m");
  });
});

describe("config disk", () => {
  it("is 4096 bytes, 0600, NUL-padded JSON with a fresh 64-hex secret each time", () => {
    const dir = createInstanceDir(tempDataDir(), "c");
    const path = instancePath(dir, "configDisk");
    const a = writeConfigDisk(path, "c");
    const bytes = readFileSync(path);
    expect(bytes.length).toBe(CONFIG_DISK_SIZE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const end = bytes.indexOf(0);
    expect(JSON.parse(bytes.subarray(0, end).toString())).toEqual({ secret: a.secret, hostname: "c" });
    expect(bytes.subarray(end).every((b) => b === 0)).toBe(true);
    expect(a.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(readConfigDisk(path)).toEqual(a);
    expect(writeConfigDisk(path, "c").secret).not.toBe(a.secret);
  });

  it("a damaged disk is an error that does not echo its content", () => {
    const dir = createInstanceDir(tempDataDir(), "c");
    const path = instancePath(dir, "configDisk");
    writeFileSync(path, '{"secret":"deadbeef-not-hex-secretvalue"}');
    expect(() => readConfigDisk(path)).toThrow(/does not hold a valid config document/);
    try {
      readConfigDisk(path);
    } catch (err) {
      expect(String((err as Error).message)).not.toContain("secretvalue");
    }
  });
});

describe("process identity (pid reuse guard)", () => {
  it("reads the start time of a live process and none for a missing one", () => {
    expect(readProcStartTime(process.pid)).toMatch(/^\d+$/);
    expect(readProcStartTime(2 ** 22 + 1)).toBeUndefined();
  });

  it("a dead pid is not alive; a live pid with another start time is not alive and is not signalled", async () => {
    const child = spawn("true");
    const pid = child.pid as number;
    const start = readProcStartTime(pid) ?? "0";
    await new Promise((r) => child.once("exit", r));
    expect(isAlive({ pid, start_time: start, argv0: "true", started_at: "" })).toBe(false);

    // Our own pid stands in for a process that took over a recorded pid: same pid, other start time.
    const reused = {
      pid: process.pid,
      start_time: String(Number(readProcStartTime(process.pid)) + 1),
      argv0: "x",
      started_at: "",
    };
    expect(isAlive(reused)).toBe(false);
    expect(signalProcess(reused, "SIGTERM")).toBe(false);
    expect(await killProcess(reused, 100)).toBe("not-running");
    const self = { ...reused, start_time: readProcStartTime(process.pid) as string };
    expect(isAlive(self)).toBe(true);
  });

  it("spawns detached in its own session with stdio to files; SIGTERM then SIGKILL", async () => {
    const dir = createInstanceDir(tempDataDir(), "p");
    // A process that ignores SIGTERM: killProcess must fall through to SIGKILL.
    const rec = await spawnDetached({
      argv: ["bash", "-c", 'trap "" TERM; echo started; while :; do sleep 0.1; done'],
      cwd: dir,
      stdoutFile: join(dir, "out"),
      stderrFile: join(dir, "err"),
    });
    expect(isAlive(rec)).toBe(true);
    const stat = readFileSync(`/proc/${rec.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Field 6 (session id) is its own pid: it leads a new session.
    expect(Number(fields[3])).toBe(rec.pid);
    expect(statSync(join(dir, "out")).mode & 0o777).toBe(0o600);
    const wrote = await waitForOutput(join(dir, "out"), "started");
    expect(wrote).toBe(true);
    expect(await killProcess(rec, 300)).toBe("killed");
    expect(isAlive(rec)).toBe(false);
  });

  it("a missing program is a clear error", async () => {
    const dir = createInstanceDir(tempDataDir(), "p");
    await expect(
      spawnDetached({
        argv: ["shed-no-such-program"],
        cwd: dir,
        stdoutFile: join(dir, "o"),
        stderrFile: join(dir, "e"),
      }),
    ).rejects.toThrow(/could not start shed-no-such-program/);
  });

  it("reattach keeps a live hypervisor and records a dead one as stopped, ending its helpers", async () => {
    const data = tempDataDir();
    const dir = createInstanceDir(data, "r");
    const spawnSleep = () =>
      spawnDetached({ argv: ["sleep", "60"], cwd: dir, stdoutFile: join(dir, "o"), stderrFile: join(dir, "e") });
    const hv = await spawnSleep();
    const helper = await spawnSleep();
    writeInstanceMeta(dir, sampleMeta("r", { hypervisor: hv, helpers: { net: helper } }));
    expect((await reattach(dir))?.running).toBe(true);

    process.kill(hv.pid, "SIGKILL");
    expect(await waitForExit(hv, 5_000)).toBe(true);
    const r = await reattach(dir);
    expect(r).toMatchObject({ running: false, foundDead: true });
    expect(r?.meta).toMatchObject({ hypervisor: null, helpers: {}, last_stop: "died" });
    expect(isAlive(helper)).toBe(false);
    expect(readInstanceMeta(dir)?.hypervisor).toBeNull();
  });
});

describe("loopback port allocation", () => {
  it("never hands out a port recorded by another instance or still pending", async () => {
    const data = tempDataDir();
    const first = await allocateLoopbackPorts(data, ["exec", "control"]);
    expect(first.exec).not.toBe(first.control);
    const second = await allocateLoopbackPorts(data, ["exec", "control"]);
    expect(new Set([...Object.values(first), ...Object.values(second)]).size).toBe(4);
    releasePending(first);
    releasePending(second);

    // Record a port in an instance's metadata while nothing listens on it: it stays reserved.
    const free = await freePortNow();
    writeInstanceMeta(createInstanceDir(data, "holder"), sampleMeta("holder", { ports: { exec: free } }));
    // The kernel is made to offer that port first (and a pending one next): both are skipped.
    const pendingOne = await allocateLoopbackPorts(data, ["exec"]);
    const offers = [free, pendingOne.exec as number, 50_123];
    const got = await allocateLoopbackPorts(data, ["exec"], async () => offers.shift() as number);
    expect(got.exec).toBe(50_123);
    releasePending(got);
    releasePending(pendingOne);
  });
});

function freePortNow(): Promise<number> {
  return new Promise((resolve) => {
    const s: Server = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForOutput(file: string, text: string): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if (readFileSync(file, "utf8").includes(text)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe("readiness probes", () => {
  it("sees a loopback listener in /proc/net/tcp, and tells a speaking server from one that only accepts", async () => {
    const speaking = createServer((s) => s.end("hello"));
    const silent = createServer(() => {});
    const closing = createServer((s) => s.destroy());
    const ports: number[] = [];
    for (const srv of [speaking, silent, closing]) {
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
      ports.push((srv.address() as { port: number }).port);
    }
    const [p1, p2, p3] = ports as [number, number, number];
    try {
      expect(isLoopbackTcpListening(p1)).toBe(true);
      expect(await loopbackPortSpeaks(p1, 2_000)).toBe(true);
      expect(await loopbackPortSpeaks(p2, 300)).toBe(false);
      expect(await loopbackPortSpeaks(p3, 2_000)).toBe(false);
    } finally {
      for (const srv of [speaking, silent, closing]) srv.close();
    }
    const free = await freePortNow();
    expect(isLoopbackTcpListening(free)).toBe(false);
    expect(await loopbackPortSpeaks(free, 1_000)).toBe(false);
  });

  it("tails the last lines of a log, and an absent log is empty", () => {
    const dir = createInstanceDir(tempDataDir(), "t");
    const log = join(dir, "serial.log");
    writeFileSync(log, `${Array.from({ length: 50 }, (_, i) => `line ${i}`).join("\r\n")}\r\n`);
    expect(tailFile(log, 3)).toBe("line 47\nline 48\nline 49");
    expect(tailFile(join(dir, "none.log"))).toBe("");
  });
});
