// Budget: about 60 s on two cores (two sheds, a packaged server, a 500 MB stdin stream).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliOk, newCliUser, REPO_ROOT, show, tempDir } from "../helpers/cli.js";
import { uniqueName } from "../helpers/names.js";
import { processes, waitFor } from "../helpers/provision.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * The SSH port's limits, against the OpenSSH client and raw sockets: a login
 * grace, keepalives that drop a client that stopped answering, a cap on
 * connections still authenticating, and stdin that waits for the guest.
 */

let server: TestServer;
let shed: string;
let dir: string;
let key: string;
let knownHosts: string;

beforeAll(async () => {
  // Short limits so that nothing here waits 30 s; the defaults are tested on the packaged server below.
  server = await startTestServer({ ssh_login_grace: "1s", ssh_keepalive_interval: "1s" });
  dir = tempDir("ssh-limits");
  shed = uniqueName("sshlim");
  const created = await server.api("POST", "/api/sheds", { name: shed });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  key = join(dir, "key");
  const gen = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "shed-test", "-f", key]);
  expect(gen.status, String(gen.stderr)).toBe(0);
  const registered = await server.api("POST", "/api/keys", { public_key: readFileSync(`${key}.pub`, "utf8") });
  expect(registered.status).toBe(201);
  knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${server.sshPort} ${(await server.info()).ssh_host_key}\n`);
});

/** The OpenSSH client running `command` in the test shed, with only our key and known_hosts. */
function sshClient(command: string): ChildProcess {
  return spawn("ssh", sshArgs(command), { stdio: ["ignore", "pipe", "pipe"] });
}

function sshArgs(command: string): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    key,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "BatchMode=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "LogLevel=ERROR",
    "-p",
    String(server.sshPort),
    `${shed}@127.0.0.1`,
    command,
  ];
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): Promise<Exit> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on("data", (c: Buffer) => out.push(c));
  child.stderr?.on("data", (c: Buffer) => err.push(c));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

/** A raw TCP connection to an SSH port: what it received, and whether the server has closed it. */
interface RawConnection {
  socket: Socket;
  received(): string;
  /** True once the server sent its first bytes (its banner), false if it closed the connection first. */
  greeted: Promise<boolean>;
  closed: Promise<void>;
  isClosed(): boolean;
}

function rawConnect(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let closed = false;
    const greeted = new Promise<boolean>((r) => {
      socket.once("data", () => r(true));
      socket.once("close", () => r(false));
    });
    socket.on("data", (c: Buffer) => {
      text += c.toString("latin1");
    });
    const done = new Promise<void>((r) =>
      socket.on("close", () => {
        closed = true;
        r();
      }),
    );
    socket.on("error", () => {
      // A reset is one way of being closed.
    });
    socket.once("connect", () =>
      resolve({ socket, received: () => text, greeted, closed: done, isClosed: () => closed }),
    );
    socket.once("error", reject);
  });
}

describe("login grace", () => {
  it("closes a connection that never sends its banner", async () => {
    const raw = await rawConnect(server.sshPort);
    await waitFor("the server to close a silent connection", async () => raw.isClosed(), 30_000);
    // The server spoke first (its banner), then gave up on a client that said nothing.
    expect(raw.received()).toMatch(/^SSH-2\.0-/);
  });

  it("does not cut an authenticated session that outlives it, nor a client that answers keepalives", async () => {
    // 4 s idle on the connection: past the 1 s grace and past 3 unanswered 1 s keepalives.
    const res = await collect(sshClient("sleep 4; echo still here"));
    expect(res, JSON.stringify(res)).toEqual({ code: 0, stdout: "still here\n", stderr: "" });
  });
});

describe("keepalive", () => {
  it("drops a client that stopped answering, and hangs up its command in the shed", async () => {
    const marker = `${60000 + Math.floor(Math.random() * 9999)}`;
    const client = sshClient(`echo started; exec sleep ${marker}`);
    const exit = collect(client);
    let out = "";
    client.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    await waitFor("the command to start", async () => out.includes("started"), 60_000);
    expect((await processes(shed)).some((p) => p === `sleep ${marker}`)).toBe(true);
    // A stopped process answers nothing, while its kernel keeps the TCP connection alive:
    // only the SSH-level keepalive can tell.
    client.kill("SIGSTOP");
    try {
      await waitFor(
        "the server to hang up the stopped client's command",
        async () => !(await processes(shed)).some((p) => p === `sleep ${marker}`),
        30_000,
      );
    } finally {
      client.kill("SIGCONT");
    }
    // Resumed, the client finds its connection gone.
    const res = await exit;
    expect(res.code, JSON.stringify(res)).toBe(255);
  });
});

// --- The packaged server with its default limits -----------------------------------------------

interface Packaged {
  pid: number;
  httpPort: number;
  sshPort: number;
  token: string;
  stop(): void;
}

/** dist/shed-server.mjs as a child process, so that its memory is its own (not this test runner's). */
async function startPackaged(): Promise<Packaged> {
  const home = tempDir("ssh-limits-server");
  const config = join(home, "server.yaml");
  writeFileSync(config, `name: limits\nhttp_port: 0\nssh_port: 0\ndata_dir: ${home}/data\nstop_timeout: 3s\n`);
  const child = spawn("node", [join(REPO_ROOT, "dist", "shed-server.mjs"), "serve", "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const ready = await new Promise<{ http_port: number; ssh_port: number }>((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    child.on("exit", (code) => reject(new Error(`shed-server exited ${code}: ${stderr}`)));
  });
  return {
    pid: child.pid as number,
    httpPort: ready.http_port,
    sshPort: ready.ssh_port,
    token: readFileSync(join(home, "data", "api_token"), "utf8").trim(),
    stop: () => child.kill("SIGTERM"),
  };
}

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m?.[1]) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

describe("the packaged server", () => {
  let packaged: Packaged;
  beforeAll(async () => {
    packaged = await startPackaged();
  });
  afterAll(() => packaged?.stop());

  it("refuses a connection at once while 64 others are still authenticating, and takes one when a slot frees", async () => {
    const waiting: RawConnection[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        const raw = await rawConnect(packaged.sshPort);
        waiting.push(raw);
        // Accepted: the server greets it with its banner.
        expect(await raw.greeted).toBe(true);
      }
      const refused = await rawConnect(packaged.sshPort);
      expect(await refused.greeted).toBe(false);
      expect(refused.received()).toBe("");

      waiting.shift()?.socket.destroy();
      // The server sees that close a moment later: then the next connection is greeted again.
      await waitFor(
        "a freed slot to be taken",
        async () => {
          const raw = await rawConnect(packaged.sshPort);
          if (!(await raw.greeted)) return false;
          waiting.push(raw);
          return true;
        },
        10_000,
      );
      expect(waiting.every((w) => !w.isClosed())).toBe(true);
    } finally {
      for (const w of waiting) w.socket.destroy();
    }
  });

  it("streams 500 MB into a command that is not reading yet, in bounded server memory, every byte counted", async () => {
    const user = newCliUser();
    const added = await user.run(
      ["server", "add", "127.0.0.1", "--port", String(packaged.httpPort), "--name", "limits", "--token-file", "-"],
      { input: `${packaged.token}\n` },
    );
    expect(added.code, show(added)).toBe(0);
    const name = uniqueName("stdin");
    await cliOk(user, ["create", name]);

    const TOTAL = 500 * 1_000_000;
    const chunk = Buffer.alloc(1_000_000, "x");
    const child = spawn(
      join(REPO_ROOT, "bin", "shed"),
      // The command reads nothing for 5 s: everything the client sends meanwhile must wait somewhere.
      ["exec", name, "--", "sh", "-c", "sleep 5; wc -c"],
      { env: user.env, stdio: ["pipe", "pipe", "pipe"] },
    );
    const exit = collect(child);
    const before = rssKb(packaged.pid);
    let peak = before;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssKb(packaged.pid));
      } catch {
        // The server is gone: the test fails on the command's exit.
      }
    }, 50);
    Readable.from(
      (function* () {
        for (let sent = 0; sent < TOTAL; sent += chunk.length) yield chunk;
      })(),
    ).pipe(child.stdin as NodeJS.WritableStream);
    const res = await exit.finally(() => clearInterval(sampler));
    expect(res.code, JSON.stringify(res)).toBe(0);
    expect(res.stdout.trim()).toBe(String(TOTAL));
    // Without backpressure the server holds what the guest has not read (560 MB more, measured); with it, about 40.
    const grownMb = (peak - before) / 1024;
    expect(grownMb, `server RSS grew from ${before} kB to ${peak} kB`).toBeLessThan(150);
  });
});
