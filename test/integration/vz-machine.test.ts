// Time budget: 60 s (two reflink copies of the image's rootfs, four stand-in starts, no VM).
//
// VzMachine's real create/start/stop/remove, run against a stand-in for the vfkit binary
// (test/fixtures/vfkit-standin.mjs: vfkit's argument syntax and its per-port vsock sockets in
// connect mode, in front of the REAL agent, which runs on this host; nothing boots, there is no
// macOS here). Only harmless commands go through that agent. VZ uses no host networking, so no
// namespace is needed. What only real vfkit can show is left to `npm run smoke:vz`.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient, AgentGuestExec, unixDialer } from "../../src/agent/client/index.js";
import { instanceDir, instancePath, listInstanceNames } from "../../src/backends/vm/instance-dir.js";
import type { ProcessRecord } from "../../src/backends/vm/instance-meta.js";
import { isAlive } from "../../src/backends/vm/process.js";
import { resolveVmImage, type VmImage } from "../../src/backends/vm/vm-image.js";
import { AGENT_GUEST_PORTS } from "../../src/backends/vm/vm-machine.js";
import { vfkitVsockSocketPath } from "../../src/backends/vz/vfkit-argv.js";
import { type VzHost, VzMachine } from "../../src/backends/vz/vz-machine.js";
import { ShedError } from "../../src/core/errors.js";
import { runCollect } from "../../src/guest/exec.js";
import { until } from "../helpers/agent.js";
import { REPO_ROOT } from "../helpers/cli.js";
import { processesUnder } from "../helpers/vm.js";

const STANDIN = join(REPO_ROOT, "test/fixtures/vfkit-standin.mjs");
const NAME = "vz-one";

// Under /tmp directly: the instance's sockets must fit in a Unix socket path (103 bytes on macOS).
const root = mkdtempSync("/tmp/shed-vzm-");
const dataDir = join(root, "data");
const binary = join(root, "vfkit");
const host: VzHost = { vfkitBinary: binary, credentials: [] };
let real: VmImage;
let image: VmImage;

function machine(): VzMachine {
  const m = VzMachine.open(dataDir, NAME, host);
  if (!m) throw new Error(`no VZ instance ${NAME} under ${dataDir}`);
  return m;
}

const dir = () => instanceDir(dataDir, NAME);
const vsockSockets = () => Object.values(AGENT_GUEST_PORTS).map((p) => vfkitVsockSocketPath(dir(), p));

function agentClient(m: VzMachine): Promise<AgentClient> {
  const a = m.agent();
  return AgentClient.connect({ dial: a.dial, secret: a.secret, where: a.where });
}

async function healthy(m: VzMachine): Promise<boolean> {
  const c = await agentClient(m);
  try {
    return (await c.health()).draining === false;
  } finally {
    c.close();
  }
}

function hypervisor(): ProcessRecord {
  const rec = machine().meta().hypervisor;
  if (!rec) throw new Error(`${NAME} records no hypervisor`);
  return rec;
}

beforeAll(() => {
  real = resolveVmImage(); // fails the file at once, with the build hint, when the image is missing
  if (!existsSync(join(REPO_ROOT, "dist/agent/shed-agent.cjs"))) throw new Error("run `npm run build` first");
  // VzMachine.create takes only an image with `Image`, the arm64 kernel VZ boots, and there is no
  // arm64 build here. This fake arm64 image links the real x86_64 image's files; its `Image` is an
  // empty placeholder: the stand-in checks that the kernel exists and never boots it.
  const fake = join(root, "images", "shed-vm-arm64");
  mkdirSync(fake, { recursive: true });
  for (const f of ["rootfs.ext4", "initrd.img", "manifest.json", "vmlinuz"])
    symlinkSync(join(real.dir, f), join(fake, f));
  writeFileSync(join(fake, "Image"), "");
  image = resolveVmImage(join(root, "images"), "arm64");
  // vfkit_binary is this wrapper; the paths it runs come from the environment, not pasted into the script.
  writeFileSync(
    binary,
    '#!/bin/sh\n# Test double for vfkit: test/fixtures/vfkit-standin.mjs\nexec "$SHED_TEST_NODE" "$SHED_TEST_VFKIT_STANDIN" "$@"\n',
  );
  chmodSync(binary, 0o755);
  // spawnDetached hands the server's environment to vfkit.
  process.env.SHED_TEST_NODE = process.execPath;
  process.env.SHED_TEST_VFKIT_STANDIN = STANDIN;
});

afterAll(async () => {
  try {
    for (const name of listInstanceNames(dataDir)) await VzMachine.open(dataDir, name, host)?.kill();
    // The stand-ins' agents die with them (pdeathsig); nothing of this file may outlive it.
    await until("the stand-ins and their agents to exit", () => processesUnder([root]).length === 0, 10_000);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

describe.sequential("VzMachine against a vfkit stand-in", () => {
  it("create refuses an image without Image before making anything; with one it copies the rootfs and writes the config disk", async () => {
    const err = await VzMachine.create({ dataDir, name: NAME, serverId: "test", image: real }, host).catch((e) => e);
    expect(err).toBeInstanceOf(ShedError);
    expect((err as ShedError).code).toBe("IMAGE_NOT_FOUND");
    expect(existsSync(dir())).toBe(false);

    const m = await VzMachine.create({ dataDir, name: NAME, serverId: "test", image, memoryMiB: 256, cpus: 1 }, host);
    expect(m.meta()).toMatchObject({
      name: NAME,
      backend: "vz",
      arch: "arm64",
      hypervisor: null,
      agent_transport: "vsock",
    });
    expect(m.meta().network).toBeUndefined();
    expect(statSync(instancePath(dir(), "rawDisk")).size).toBe(statSync(real.rootfs).size);
    expect(statSync(instancePath(dir(), "configDisk")).mode & 0o777).toBe(0o600);
  });

  it("start spawns vfkit with the launch argv and returns once its exec socket takes connections", async () => {
    const m = machine();
    await m.start();
    expect(m.isRunning()).toBe(true);
    const rec = hypervisor();
    expect(rec.argv0).toBe(binary);
    // The wrapper execs node on the stand-in: what follows the script is the argv the machine gave.
    const cmdline = readFileSync(`/proc/${rec.pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    expect(cmdline.slice(2)).toEqual(VzMachine.launch(dir(), m.meta(), host).argv.slice(1));
    for (const s of vsockSockets()) expect(statSync(s).isSocket()).toBe(true);
  });

  it("the agent answers health and exec through VzMachine.agent() (vsock-1024.sock), and health on the control port", async () => {
    const m = machine();
    await m.waitForAgent(30_000, () => healthy(m));
    const file = join(root, "hello.txt");
    writeFileSync(file, "from a file\n");
    const c = await agentClient(m);
    try {
      const r = await runCollect(new AgentGuestExec(c), {
        argv: ["sh", "-c", 'echo "$1"; cat "$2"', "sh", "through vfkit's vsock", file],
        user: "root",
      });
      expect(r).toEqual({ exitCode: 0, stdout: "through vfkit's vsock\nfrom a file\n", stderr: "" });
    } finally {
      c.close();
    }
    // The secret the config disk (deviceId=shedcfg) carried is the one the agent demands.
    await expect(
      AgentClient.connect({ dial: m.agent().dial, secret: "0".repeat(64), where: "wrong secret" }),
    ).rejects.toThrow();
    const control = await AgentClient.connect({
      dial: unixDialer(vfkitVsockSocketPath(dir(), AGENT_GUEST_PORTS.control)),
      secret: m.agent().secret,
      where: "the control port",
    });
    expect((await control.health()).draining).toBe(false);
    control.close();
    expect(readFileSync(instancePath(dir(), "serialLog"), "utf8")).toContain("config disk found by serial shedcfg");
  });

  it("stop sends SIGTERM and returns powerdown once vfkit exited; the metadata says stopped", async () => {
    const rec = hypervisor();
    expect(await machine().stop(10_000)).toBe("powerdown");
    expect(isAlive(rec)).toBe(false);
    expect(machine().meta()).toMatchObject({ hypervisor: null, last_stop: "powerdown" });
    expect(readFileSync(instancePath(dir(), "serialLog"), "utf8")).toContain("reboot: Power down");
    await until("the agent to exit", () => processesUnder([dir()]).length === 0);
  });

  it("a vfkit that does not exit on SIGTERM is killed after the timeout (killed), leaving its sockets behind", async () => {
    const m = machine();
    await m.start();
    await m.waitForAgent(30_000, () => healthy(m));
    const rec = hypervisor();
    writeFileSync(join(dir(), "ignore-sigterm"), "");
    try {
      expect(await m.stop(1_500)).toBe("killed");
    } finally {
      rmSync(join(dir(), "ignore-sigterm"), { force: true });
    }
    expect(isAlive(rec)).toBe(false);
    expect(m.meta()).toMatchObject({ hypervisor: null, last_stop: "killed" });
    expect(readFileSync(instancePath(dir(), "serialLog"), "utf8")).toContain("the guest ignores it");
    await until("the agent to exit", () => processesUnder([dir()]).length === 0);
    // What a crash leaves: the next test starts on top of these.
    for (const s of vsockSockets()) expect(existsSync(s)).toBe(true);
  });

  it("stale sockets from a crash do not stop the next start (vfkit itself cannot listen on them)", async () => {
    // The control: vfkit started by hand on the crash's leftovers fails to listen.
    const argv = VzMachine.launch(dir(), machine().meta(), host).argv;
    const direct = spawnSync(binary, argv.slice(1), { encoding: "utf8", timeout: 30_000 });
    expect(direct.status).toBe(1);
    expect(direct.stderr).toContain(`cannot listen on the vsock socket ${vsockSockets()[0]}: EADDRINUSE`);

    const m = machine();
    await m.start();
    await m.waitForAgent(30_000, () => healthy(m));
  });

  it("remove kills the running vfkit (and its agent) and removes the instance directory", async () => {
    const rec = hypervisor();
    await machine().remove();
    expect(isAlive(rec)).toBe(false);
    expect(existsSync(dir())).toBe(false);
    expect(VzMachine.open(dataDir, NAME, host)).toBeUndefined();
    await until("the agent to exit", () => processesUnder([root]).length === 0);
  });
});
