// Time budget: about 2-3 minutes on 2 cores without KVM: two TCG boots of one instance
// (~20-40 s each to the agent), the rest is quick. Every QEMU started here is killed in afterAll.
import { spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient, tcpDialer } from "../../src/agent/client/index.js";
import { QemuMachine } from "../../src/backends/qemu/qemu-machine.js";
import { instanceDir, instancePath } from "../../src/backends/vm/instance-dir.js";
import type { ProcessRecord } from "../../src/backends/vm/instance-meta.js";
import { isAlive, waitForExit } from "../../src/backends/vm/process.js";
import { REPO_ROOT } from "../helpers/cli.js";
import { agentFor, removeVmDataDir, testImage, vmDataDir } from "../helpers/vm.js";

const NAME = "qm-one";
const BOOT_TIMEOUT = 150_000;
let dataDir: string;

beforeAll(() => {
  testImage(); // fails the file at once, with the build hint, when the image is missing
  dataDir = vmDataDir();
});

afterAll(async () => {
  if (dataDir) await removeVmDataDir(dataDir);
});

function machine(): QemuMachine {
  const m = QemuMachine.open(dataDir, NAME);
  if (!m) throw new Error(`no instance ${NAME} under ${dataDir}`);
  return m;
}

/** Session id (field 6 of /proc/PID/stat) of a process. */
function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]);
}

/** Host TCP listeners on a port, as "addr:port" in /proc/net/tcp's hex form. */
function listenersOn(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c[3] === "0A" && c[1]?.endsWith(`:${hexPort}`))
    .map((c) => c[1] as string);
}

describe.sequential("QEMU machine (real image, TCG)", () => {
  it("outlives the process that started it; another process re-attaches by metadata and reaches the agent", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(REPO_ROOT, "test/fixtures/qemu-spawner.ts"), dataDir, NAME],
      {
        cwd: REPO_ROOT,
        // Not the test worker's own stderr: nothing of the spawner (or what it starts) may hold vitest's channels.
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const started = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out.trim());
      });
      child.once("exit", (code) => reject(new Error(`spawner exited (${code}) before starting the VM: ${out}${err}`)));
    });
    expect(started).toMatch(/^started \d+$/);
    // The "server" dies hard: nothing of it can stop the VM now.
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));

    const m = machine();
    const qemu = m.meta().hypervisor as ProcessRecord;
    expect(qemu.argv0).toBe("qemu-system-x86_64");
    expect(isAlive(qemu)).toBe(true);
    expect(sessionOf(qemu.pid)).toBe(qemu.pid); // its own session, not the dead spawner's
    const pasta = m.meta().helpers.net as ProcessRecord;
    expect(isAlive(pasta)).toBe(true);

    await m.waitForAgent(BOOT_TIMEOUT);
    const bootMs = Date.now() - Date.parse(qemu.started_at);
    console.log(`boot to agent under ${process.env.SHED_TEST_KVM ? "KVM" : "TCG"}: ${(bootMs / 1000).toFixed(1)} s`);
    expect(await m.status()).toEqual({ running: true, foundDead: false });
  });

  it("the agent takes the per-VM secret from the config disk and refuses any other", async () => {
    const m = machine();
    const agent = await agentFor(m);
    try {
      expect(await agent.health()).toBeTruthy();
    } finally {
      agent.close();
    }
    const ep = m.agentEndpoint();
    await expect(
      AgentClient.connect({
        dial: tcpDialer(ep.host, ep.execPort),
        secret: "0".repeat(64),
        handshakeTimeoutMs: 10_000,
      }),
    ).rejects.toThrow();
    // The secret is on no command line: not QEMU's, not pasta's.
    for (const rec of [m.meta().hypervisor, m.meta().helpers.net] as ProcessRecord[]) {
      const cmdline = readFileSync(`/proc/${rec.pid}/cmdline`, "utf8");
      expect(cmdline).not.toContain(ep.secret);
    }
  });

  it("keeps its control surfaces private: 0700 directory, 0600 QMP socket and config disk, forwards on 127.0.0.1 only", () => {
    const m = machine();
    const dir = instanceDir(dataDir, NAME);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, "vm")).mode & 0o777).toBe(0o700);
    for (const f of ["qmpSocket"] as const) {
      const st = statSync(instancePath(dir, f));
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
    }
    expect(statSync(instancePath(dir, "configDisk")).mode & 0o777).toBe(0o600);
    expect(statSync(instancePath(dir, "meta")).mode & 0o777).toBe(0o600);
    for (const port of Object.values(m.meta().ports)) {
      const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
      expect(listenersOn(port)).toEqual([`0100007F:${hexPort}`]);
    }
  });

  it("a network helper killed under a running VM is replaced by start(), and the agent answers again", async () => {
    const m = machine();
    const qemu = m.meta().hypervisor as ProcessRecord;
    const pasta = m.meta().helpers.net as ProcessRecord;
    process.kill(pasta.pid, "SIGKILL");
    expect(await waitForExit(pasta, 5_000)).toBe(true);
    expect(m.isRunning()).toBe(true);
    await m.start();
    const fresh = m.meta().helpers.net as ProcessRecord;
    expect(fresh.pid).not.toBe(pasta.pid);
    expect(isAlive(fresh)).toBe(true);
    expect(m.meta().hypervisor).toEqual(qemu); // the same VM, not a new boot
    await m.waitForAgent(30_000);
  });

  it("powers down through QMP: the guest shuts down cleanly, QEMU and pasta exit", async () => {
    const m = machine();
    const qemu = m.meta().hypervisor as ProcessRecord;
    const pasta = m.meta().helpers.net as ProcessRecord;
    expect(await m.stop(60_000)).toBe("powerdown");
    expect(isAlive(qemu)).toBe(false);
    expect(await waitForExit(pasta, 5_000)).toBe(true);
    expect(m.meta()).toMatchObject({ hypervisor: null, helpers: {}, last_stop: "powerdown" });
    expect(m.serialTail(5)).toMatch(/reboot: Power down/);
    expect(await m.stop(1_000)).toBe("not-running");
  });

  it("a QEMU killed behind the server's back is reported stopped (died), and its network helper goes too", async () => {
    const m = machine();
    await m.start();
    await m.waitForAgent(BOOT_TIMEOUT);
    const qemu = m.meta().hypervisor as ProcessRecord;
    const pasta = m.meta().helpers.net as ProcessRecord;
    process.kill(qemu.pid, "SIGKILL");
    expect(await waitForExit(qemu, 10_000)).toBe(true);
    expect(m.isRunning()).toBe(false);
    expect(await m.status()).toEqual({ running: false, foundDead: true });
    expect(m.meta()).toMatchObject({ hypervisor: null, last_stop: "died" });
    expect(await waitForExit(pasta, 5_000)).toBe(true);
    // Seen again, it stays stopped and is not "found dead" twice.
    expect(await m.status()).toEqual({ running: false, foundDead: false });
  });
});
