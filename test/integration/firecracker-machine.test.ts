// Time budget: 60 s (three reflink copies of the image's rootfs, four stand-in starts, no VM).
//
// FirecrackerMachine's real create/start/stop/remove, run against a stand-in for the firecracker
// binary (test/fixtures/firecracker-standin.mjs: Firecracker's API and vsock conventions in front
// of the REAL agent, which runs on this host; nothing boots, there is no /dev/kvm here). Only
// harmless commands go through that agent. What only real Firecracker can show is left to
// `npm run smoke:firecracker`.
//
// The machine makes and deletes TAP devices in the namespace it runs in, so its operations run in
// a child process (test/fixtures/firecracker-machine-driver.ts) under `ip netns exec` in a network
// namespace this file creates, after `shed-server setup --netns` made the bridge there; the
// namespace is deleted in afterAll whatever happened. The host's own namespace is never changed.
// What needs no network (agent, status, metadata) is done from this process: the instance's
// sockets are files, and the machine holds nothing a second process would lack.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient, AgentGuestExec, firecrackerDialer } from "../../src/agent/client/index.js";
import { type FirecrackerHost, FirecrackerMachine } from "../../src/backends/firecracker/firecracker-machine.js";
import { SEND_CTRL_ALT_DEL } from "../../src/backends/firecracker/firecracker-plan.js";
import { instanceDir, instancePath, listInstanceNames } from "../../src/backends/vm/instance-dir.js";
import type { InstanceMeta, ProcessRecord } from "../../src/backends/vm/instance-meta.js";
import { isAlive, waitForExit } from "../../src/backends/vm/process.js";
import { resolveVmImage, type VmImage } from "../../src/backends/vm/vm-image.js";
import { runCollect } from "../../src/guest/exec.js";
import { until } from "../helpers/agent.js";
import { REPO_ROOT } from "../helpers/cli.js";
import { checkFirecrackerRequest } from "../helpers/firecracker-spec.js";
import { processesUnder } from "../helpers/vm.js";

const execFileAsync = promisify(execFile);

const NS = `shedtest-fc-${randomBytes(3).toString("hex")}`;
const BRIDGE = "shedbr0";
const SUBNET = "172.30.0.0/24";
const STANDIN = join(REPO_ROOT, "test/fixtures/firecracker-standin.mjs");
const DRIVER = join(REPO_ROOT, "test/fixtures/firecracker-machine-driver.ts");
const ONE = "fc-one";

// Under /tmp directly: the instance's sockets must fit in a Unix socket path. /tmp and the image
// are on one filesystem here, so the rootfs copy is a reflink or a sparse copy, not 4.5 GiB.
const root = mkdtempSync("/tmp/shed-fcm-");
const dataDir = join(root, "data");
const configFile = join(root, "server.yaml");
const binary = join(root, "firecracker");
const host: FirecrackerHost = { binary, bridge: BRIDGE, subnet: SUBNET };
let image: VmImage;
let nsMade = false;
let driver: Driver | undefined;

/** The machine-driving child in the namespace: one JSON command per line, one JSON answer per line. */
class Driver {
  private readonly waiting: ((line: string) => void)[] = [];
  private stderr = "";
  readonly exited: Promise<void>;

  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (l) => this.waiting.shift()?.(l));
    proc.stderr?.setEncoding("utf8").on("data", (t: string) => {
      this.stderr += t;
    });
    this.exited = new Promise((resolve) =>
      proc.on("exit", () => {
        for (const w of this.waiting.splice(0)) w(JSON.stringify({ ok: false, error: { message: this.stderr } }));
        resolve();
      }),
    );
  }

  async call<T>(cmd: { op: string; name: string; timeoutMs?: number }): Promise<T> {
    const line = new Promise<string>((resolve) => this.waiting.push(resolve));
    this.proc.stdin?.write(`${JSON.stringify(cmd)}\n`);
    const answer = JSON.parse(await line) as { ok: boolean; result?: T; error?: { code?: string; message: string } };
    if (!answer.ok) throw new Error(`${cmd.op} ${cmd.name}: ${answer.error?.code}: ${answer.error?.message}`);
    return answer.result as T;
  }

  async close(): Promise<void> {
    this.proc.stdin?.end();
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

async function run(argv: string[]): Promise<string> {
  const [program, ...args] = argv as [string, ...string[]];
  return (await execFileAsync(program, args, { timeout: 30_000 })).stdout;
}

interface Link {
  ifindex: number;
  ifname: string;
  flags: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string } };
}

/** The interface as the namespace sees it, or undefined when there is none. */
async function linkInNs(name: string): Promise<Link | undefined> {
  const links = JSON.parse(await run(["ip", "netns", "exec", NS, "ip", "-j", "-d", "link", "show"])) as Link[];
  return links.find((l) => l.ifname === name);
}

function machine(name = ONE): FirecrackerMachine {
  const m = FirecrackerMachine.open(dataDir, name, host);
  if (!m) throw new Error(`no Firecracker instance ${name} under ${dataDir}`);
  return m;
}

interface Recorded {
  method: string;
  path: string;
  body?: Record<string, unknown>;
  status: number;
}

/** What the stand-in received on its API socket, every start of the instance so far. */
function requests(name = ONE): Recorded[] {
  const file = join(instanceDir(dataDir, name), "firecracker-requests.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Recorded);
}

/** The machine's agent dialer with its secret (read from the config disk), as vm-backend uses it. */
function agentClient(m: FirecrackerMachine): Promise<AgentClient> {
  const a = m.agent();
  return AgentClient.connect({ dial: a.dial, secret: a.secret, where: a.where });
}

async function healthy(m: FirecrackerMachine): Promise<boolean> {
  const c = await agentClient(m);
  try {
    return (await c.health()).draining === false;
  } finally {
    c.close();
  }
}

function hypervisorOf(name = ONE): ProcessRecord {
  const rec = machine(name).meta().hypervisor;
  if (!rec) throw new Error(`${name} records no hypervisor`);
  return rec;
}

function head(path: string, bytes: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(bytes);
    readSync(fd, buf, 0, bytes, 0);
    return buf;
  } finally {
    closeSync(fd);
  }
}

beforeAll(async () => {
  image = resolveVmImage(); // fails the file at once, with the build hint, when the image is missing
  if (!image.vmlinux) throw new Error(`${image.dir} has no vmlinux: rebuild it with npm run build-vm-image`);
  for (const f of ["dist/agent/shed-agent.cjs", "dist/shed-server.mjs"]) {
    if (!existsSync(join(REPO_ROOT, f))) throw new Error(`${f} is missing: run \`npm run build\` first`);
  }
  // firecracker_binary is this wrapper; the paths it runs come from the environment, not pasted into the script.
  writeFileSync(
    binary,
    '#!/bin/sh\n# Test double for firecracker: test/fixtures/firecracker-standin.mjs\nexec "$SHED_TEST_NODE" "$SHED_TEST_FC_STANDIN" "$@"\n',
  );
  chmodSync(binary, 0o755);
  // JSON is YAML.
  writeFileSync(
    configFile,
    JSON.stringify({ data_dir: dataDir, vm_bridge: BRIDGE, vm_subnet: SUBNET, firecracker_binary: binary }),
  );
  await run(["ip", "netns", "add", NS]);
  nsMade = true;
  await run(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"]);
  await run([
    process.execPath,
    join(REPO_ROOT, "dist/shed-server.mjs"),
    "setup",
    "--config",
    configFile,
    "--netns",
    NS,
  ]);
  driver = new Driver(
    spawn("ip", ["netns", "exec", NS, process.execPath, "--import", "tsx", DRIVER, configFile], {
      cwd: REPO_ROOT,
      env: { ...process.env, SHED_TEST_NODE: process.execPath, SHED_TEST_FC_STANDIN: STANDIN },
      // Not the worker's own stdio: nothing the driver starts may hold vitest's channels.
      stdio: ["pipe", "pipe", "pipe"],
    }),
  );
});

afterAll(async () => {
  try {
    // kill() needs no network: it signals the recorded process and settles the metadata.
    for (const name of listInstanceNames(dataDir)) await FirecrackerMachine.open(dataDir, name, host)?.kill();
    await driver?.close();
    // The stand-ins' agents die with them (pdeathsig); nothing of this file may outlive it.
    await until("the stand-ins and their agents to exit", () => processesUnder([root]).length === 0, 10_000);
  } finally {
    if (nsMade) await run(["ip", "netns", "del", NS]);
    rmSync(root, { recursive: true, force: true });
  }
});

describe.sequential("FirecrackerMachine against a firecracker stand-in, in a network namespace", () => {
  const d = () => driver as Driver;
  let tapIndex: number;

  it("create copies the rootfs, writes the config disk and records a network (TAP, IP, MAC, CID)", async () => {
    const meta = await d().call<InstanceMeta>({ op: "create", name: ONE });
    expect(meta).toMatchObject({ name: ONE, backend: "firecracker", hypervisor: null, agent_transport: "vsock" });
    // The lowest free of each: the bridge takes 172.30.0.1, the MAC carries the IP.
    expect(meta.network).toEqual({ tap: "shedtap0", ip: "172.30.0.2", mac: "06:00:ac:1e:00:02", cid: 3 });
    const dir = instanceDir(dataDir, ONE);
    const copy = instancePath(dir, "rawDisk");
    expect(statSync(copy).size).toBe(statSync(image.rootfs).size);
    expect(statSync(copy).ino).not.toBe(statSync(image.rootfs).ino);
    // The ext4 superblock sits at 1024: the copy carries the image's filesystem.
    expect(head(copy, 4096).equals(head(image.rootfs, 4096))).toBe(true);
    expect(statSync(instancePath(dir, "configDisk")).mode & 0o777).toBe(0o600);
    expect(statSync(instancePath(dir, "configDisk")).size).toBe(4096);
  });

  it("start spawns firecracker with the plan's argv and sends the plan's requests in order, each valid; the TAP is on the bridge", async () => {
    const meta = await d().call<InstanceMeta>({ op: "start", name: ONE });
    const m = machine();
    expect(m.isRunning()).toBe(true);
    const dir = instanceDir(dataDir, ONE);
    const launch = FirecrackerMachine.launch(dir, meta, host);
    // The wrapper execs node on the stand-in: what follows the script is the argv the machine gave.
    const cmdline = readFileSync(`/proc/${meta.hypervisor?.pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    expect(cmdline.slice(2)).toEqual(launch.argv.slice(1));
    expect(meta.hypervisor?.argv0).toBe(binary);

    const got = requests();
    for (const r of got) expect(checkFirecrackerRequest(r), `${r.method} ${r.path}`).toEqual([]);
    expect(got.map((r) => r.status)).toEqual(launch.requests.map(() => 204));
    expect(got.map(({ method, path, body }) => ({ method, path, body }))).toEqual(launch.requests);
    expect(statSync(instancePath(dir, "apiSocket")).mode & 0o777).toBe(0o600);

    const tap = await linkInNs("shedtap0");
    expect(tap?.linkinfo).toMatchObject({ info_kind: "tun", info_data: { type: "tap" } });
    expect(tap?.master).toBe(BRIDGE);
    expect(tap?.flags).toContain("UP");
    tapIndex = tap?.ifindex as number;
  });

  it("waitForAgent succeeds with a health probe through the machine's vsock dialer; an exec returns its output", async () => {
    const m = machine();
    await m.waitForAgent(30_000, () => healthy(m));
    const file = join(root, "hello.txt");
    writeFileSync(file, "from a file\n");
    const c = await agentClient(m);
    try {
      const r = await runCollect(new AgentGuestExec(c), {
        argv: ["sh", "-c", 'echo "$1"; cat "$2"', "sh", "through firecracker's vsock", file],
        user: "root",
      });
      expect(r).toEqual({ exitCode: 0, stdout: "through firecracker's vsock\nfrom a file\n", stderr: "" });
    } finally {
      c.close();
    }
    // The secret the config disk carried is the one the agent demands: another is refused.
    await expect(
      AgentClient.connect({ dial: m.agent().dial, secret: "0".repeat(64), where: "the agent, wrong secret" }),
    ).rejects.toThrow();
    // The control port answers health too; a port nothing listens on is closed without a reply.
    const vsock = instancePath(instanceDir(dataDir, ONE), "vsockSocket");
    const control = await AgentClient.connect({
      dial: firecrackerDialer(vsock, 1026),
      secret: m.agent().secret,
      where: "the control port",
    });
    expect((await control.health()).draining).toBe(false);
    control.close();
    await expect(firecrackerDialer(vsock, 1025)()).rejects.toThrow(/refused port 1025: it closed the connection/);
    expect(readFileSync(instancePath(instanceDir(dataDir, ONE), "serialLog"), "utf8")).toContain(
      "shed-boot: config disk /dev/vdb",
    );
  });

  it("stop sends SendCtrlAltDel and returns powerdown once firecracker exited; the metadata says stopped", async () => {
    const rec = hypervisorOf();
    expect(await d().call({ op: "stop", name: ONE, timeoutMs: 10_000 })).toBe("powerdown");
    expect(isAlive(rec)).toBe(false);
    const last = requests().at(-1);
    expect(last).toMatchObject({ ...SEND_CTRL_ALT_DEL, status: 204 });
    expect(machine().meta()).toMatchObject({ hypervisor: null, last_stop: "powerdown" });
    expect(machine().isRunning()).toBe(false);
    expect(readFileSync(instancePath(instanceDir(dataDir, ONE), "serialLog"), "utf8")).toContain(
      "reboot: Restarting system",
    );
    await until("the agent to exit", () => processesUnder([instanceDir(dataDir, ONE)]).length === 0);
  });

  it("starts again onto the TAP it already has (the same device, not a new one) and the agent answers", async () => {
    const before = requests().length;
    const meta = await d().call<InstanceMeta>({ op: "start", name: ONE });
    const again = requests().slice(before);
    expect(again.map(({ method, path, body }) => ({ method, path, body }))).toEqual(
      FirecrackerMachine.launch(instanceDir(dataDir, ONE), meta, host).requests,
    );
    expect((await linkInNs("shedtap0"))?.ifindex).toBe(tapIndex);
    const m = machine();
    await m.waitForAgent(30_000, () => healthy(m));
  });

  it("a guest that ignores Ctrl+Alt+Del is killed after the timeout (killed), its agent with it", async () => {
    const dir = instanceDir(dataDir, ONE);
    const rec = hypervisorOf();
    writeFileSync(join(dir, "ignore-ctrl-alt-del"), "");
    try {
      expect(await d().call({ op: "stop", name: ONE, timeoutMs: 1_500 })).toBe("killed");
    } finally {
      rmSync(join(dir, "ignore-ctrl-alt-del"), { force: true });
    }
    // The request was taken (204): the kill is the fallback, not an error path.
    expect(requests().at(-1)).toMatchObject({ ...SEND_CTRL_ALT_DEL, status: 204 });
    expect(isAlive(rec)).toBe(false);
    expect(machine().meta()).toMatchObject({ hypervisor: null, last_stop: "killed" });
    await until("the agent to exit", () => processesUnder([dir]).length === 0);
    // What a crash leaves (the stand-in, like Firecracker, refuses an API socket path that exists):
    // the next start is made on top of these.
    for (const f of ["apiSocket", "vsockSocket"] as const) expect(existsSync(instancePath(dir, f))).toBe(true);
  });

  it("a firecracker killed behind the machine's back is found dead by status() and recorded as died", async () => {
    await d().call({ op: "start", name: ONE });
    const rec = hypervisorOf();
    expect(await machine().status()).toEqual({ running: true, foundDead: false });
    process.kill(rec.pid, "SIGKILL");
    expect(await waitForExit(rec, 10_000)).toBe(true);
    expect(await machine().status()).toEqual({ running: false, foundDead: true });
    expect(machine().meta()).toMatchObject({ hypervisor: null, last_stop: "died" });
    // Reconciled once: the next look finds nothing to settle.
    expect(await machine().status()).toEqual({ running: false, foundDead: false });
    await until("the agent to exit", () => processesUnder([instanceDir(dataDir, ONE)]).length === 0);
  });

  it("a request Firecracker refuses fails the start, naming it and the fault; the process is killed", async () => {
    const dir = instanceDir(dataDir, ONE);
    writeFileSync(join(dir, "refuse-api-path"), "/vsock");
    try {
      await expect(d().call({ op: "start", name: ONE })).rejects.toThrow(
        /BACKEND_ERROR: Firecracker refused PUT \/vsock: PUT \/vsock refused on purpose/,
      );
    } finally {
      rmSync(join(dir, "refuse-api-path"), { force: true });
    }
    // The plan stopped at the refusal: InstanceStart was never sent.
    expect(requests().at(-1)).toMatchObject({ method: "PUT", path: "/vsock", status: 400 });
    expect(machine().meta()).toMatchObject({ hypervisor: null, last_stop: "killed" });
    await until("the stand-in to exit", () => processesUnder([dir]).length === 0);
  });

  it("remove deletes the TAP in the namespace and the instance directory; the next create gets the freed network", async () => {
    const two = await d().call<InstanceMeta>({ op: "create", name: "fc-two" });
    // fc-one still holds the lowest of each.
    expect(two.network).toEqual({ tap: "shedtap1", ip: "172.30.0.3", mac: "06:00:ac:1e:00:03", cid: 4 });
    const one = machine().meta().network;

    await d().call({ op: "remove", name: ONE });
    expect(await linkInNs("shedtap0")).toBeUndefined();
    expect((await linkInNs(BRIDGE))?.linkinfo?.info_kind).toBe("bridge");
    expect(existsSync(instanceDir(dataDir, ONE))).toBe(false);

    // The allocator hands out the lowest free TAP, IP and CID: fc-one's, now that its metadata is gone.
    const three = await d().call<InstanceMeta>({ op: "create", name: "fc-three" });
    expect(three.network).toEqual(one);

    await d().call({ op: "remove", name: "fc-two" });
    await d().call({ op: "remove", name: "fc-three" });
    expect(listInstanceNames(dataDir)).toEqual([]);
  });
});
