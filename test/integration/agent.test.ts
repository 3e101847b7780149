/**
 * shed-agent as built (dist/agent/shed-agent.cjs), a child process on Unix sockets in a temp dir,
 * driven through the real client (AgentClient, AgentGuestExec) as root on this host.
 *
 * Budget: about 20 s (three agents; the slowest parts are the drain waits and the useradd).
 */
import { execFileSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { list } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../src/agent/client/agent-client.js";
import { AgentGuestExec } from "../../src/agent/client/agent-guest-exec.js";
import { firecrackerDialer } from "../../src/agent/client/dialers.js";
import { ShedError } from "../../src/core/errors.js";
import { runCollect } from "../../src/guest/exec.js";
import { encodeFrame, encodeJsonFrame, FrameParser, FrameType } from "../../src/protocol/agent-frames.js";
import { killAgents, type RunningAgent, rawTar, startAgent, until } from "../helpers/agent.js";
import { removeAtEnd } from "../helpers/cli.js";

const dir = removeAtEnd(mkdtempSync(join(tmpdir(), "shed-agent-")));
const TEST_USER = "shedagenttest";
let agent: RunningAgent;
let client: AgentClient;
let guest: AgentGuestExec;

beforeAll(async () => {
  try {
    execFileSync("userdel", [TEST_USER], { stdio: "ignore" });
  } catch {
    // Not there: the usual case.
  }
  execFileSync("useradd", ["--no-create-home", "--home-dir", "/nonexistent", "--groups", "users", TEST_USER]);
  agent = await startAgent(dir);
  client = await agent.client();
  guest = new AgentGuestExec(client);
});

afterAll(async () => {
  client?.close();
  await agent?.stop();
  killAgents();
  try {
    execFileSync("userdel", [TEST_USER], { stdio: "ignore" });
  } catch {
    // Never made.
  }
});

const root = { user: "root" };

async function collect(readable: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("exec", () => {
  it("keeps stdout and stderr apart and reports the exit code", async () => {
    const r = await runCollect(guest, { ...root, argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
    expect(r).toEqual({ exitCode: 3, stdout: "out\n", stderr: "err\n" });
  });

  it("passes env and cwd, and reads an empty stdin when none is attached", async () => {
    const r = await runCollect(guest, {
      ...root,
      argv: ["sh", "-c", 'printf "%s|%s|" "$GREETING" "$PWD"; cat; echo end'],
      env: { GREETING: "hi there" },
      cwd: dir,
    });
    expect(r.stdout).toBe(`hi there|${dir}|end\n`);
  });

  it("delivers stdin and its EOF, and streams megabytes both ways under flow control", async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, "abcdefgh");
    const r = await runCollect(guest, { ...root, argv: ["sh", "-c", "cat; echo; echo closed >&2"] }, big);
    expect(r.stdout.length).toBe(big.length + 1);
    expect(r.stdout.slice(0, 16)).toBe("abcdefghabcdefgh");
    expect(r.stderr).toBe("closed\n");
  });

  it("says 127 for a missing program and refuses an unknown user or cwd", async () => {
    const r = await runCollect(guest, { ...root, argv: ["no-such-program-here"] });
    expect(r.exitCode).toBe(127);
    await expect(runCollect(guest, { argv: ["true"], user: "no-such-user" })).rejects.toThrow(/no user no-such-user/);
    await expect(runCollect(guest, { ...root, argv: ["true"], cwd: "/no/such/dir" })).rejects.toThrow(
      /working directory \/no\/such\/dir does not exist/,
    );
  });

  it("runs as another user with its groups and HOME (default cwd / when the home is missing)", async () => {
    const r = await runCollect(guest, {
      user: TEST_USER,
      argv: ["sh", "-c", 'id -un; id -Gn; echo "$HOME $USER"; pwd'],
    });
    const [name, groups, env, cwd] = r.stdout.trim().split("\n");
    expect(name).toBe(TEST_USER);
    expect(groups?.split(" ")).toContain("users");
    expect(env).toBe(`/nonexistent ${TEST_USER}`);
    expect(cwd).toBe("/");
    const nobody = await runCollect(guest, { user: "65534", argv: ["id", "-u"] });
    expect(nobody.stdout.trim()).toBe("65534");
  });

  it("delivers signals and reports a signal's exit as 128 + n", async () => {
    const proc = await guest.exec({
      ...root,
      argv: ["sh", "-c", 'trap "echo got; exit 7" USR1; echo ready; while :; do sleep 0.05; done'],
    });
    let out = "";
    proc.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr.resume();
    await until("ready", () => out.includes("ready"));
    await proc.signal("SIGUSR1");
    expect(await proc.exited).toBe(7);
    expect(out).toBe("ready\ngot\n");

    const sleeper = await guest.exec({ ...root, argv: ["sleep", "30"] });
    sleeper.stdout.resume();
    sleeper.stderr.resume();
    await sleeper.signal("SIGTERM");
    expect(await sleeper.exited).toBe(143);
  });

  it("gives a program a terminal of the asked size, resizes it, and merges stderr into it", async () => {
    const proc = await guest.exec({
      ...root,
      argv: [
        "sh",
        "-c",
        'test -t 0 && test -t 1 && echo tty; stty size; echo to-stderr >&2; trap "stty size; exit 5" WINCH; echo ready; while :; do sleep 0.05; done',
      ],
      tty: { cols: 100, rows: 30 },
      stdin: true,
    });
    let out = "";
    proc.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    let err = "";
    proc.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    await until("ready", () => out.includes("ready"));
    await proc.resize(120, 40);
    expect(await proc.exited).toBe(5);
    expect(out.replace(/\r/g, "")).toBe("tty\n30 100\nto-stderr\nready\n40 120\n");
    expect(err).toBe("");
  });

  it("feeds a terminal's input and keeps the program running after stdin ends", async () => {
    const proc = await guest.exec({
      ...root,
      argv: ["sh", "-c", 'read line; echo "got $line"; sleep 0.2; echo after'],
      tty: { cols: 80, rows: 24 },
      stdin: true,
    });
    let out = "";
    proc.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr.resume();
    proc.stdin?.end("hello\n");
    expect(await proc.exited).toBe(0);
    expect(out).toContain("got hello");
    expect(out).toContain("after");
  });
});

describe("files as tar", () => {
  it("puts an archive under a directory as the user and gets a tree back", async () => {
    const target = join(dir, "put-target");
    const res = await client.putTar(
      { dir: target, user: "65534" },
      Readable.from([
        rawTar([
          { name: "sub/", type: "5" },
          { name: "sub/a.txt", body: "alpha" },
          { name: "b", type: "2", link: "sub/a.txt" },
        ]),
      ]),
    );
    expect(res.entries).toBe(3);
    expect(readFileSync(join(target, "sub/a.txt"), "utf8")).toBe("alpha");
    expect(statSync(join(target, "sub/a.txt")).uid).toBe(65534);
    expect(statSync(target).uid).toBe(65534);
    expect(lstatSync(join(target, "b")).isSymbolicLink()).toBe(true);

    const out = await collect(await client.getTar({ path: target }));
    const names: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const parser = list({ onReadEntry: (e) => names.push(e.path) });
      parser.on("end", resolve).on("error", reject);
      parser.end(out);
    });
    expect(names.sort()).toEqual(["put-target/", "put-target/b", "put-target/sub/", "put-target/sub/a.txt"]);
  });

  it("refuses traversal, absolute paths, writing through symlinks, devices and oversize archives", async () => {
    const outside = join(dir, "outside");
    mkdirSync(outside);
    const target = join(dir, "attack-target");
    mkdirSync(target);
    symlinkSync(outside, join(target, "preexisting-link"));
    symlinkSync(join(outside, "leaf"), join(target, "leaf-link"));
    const attacks: [string, Buffer, RegExp][] = [
      ["dot-dot", rawTar([{ name: "../outside/escaped", body: "x" }]), /refused/],
      ["absolute", rawTar([{ name: `${outside}/abs`, body: "x" }]), /refused/],
      [
        "through a new symlink",
        rawTar([
          { name: "l", type: "2", link: outside },
          { name: "l/through", body: "x" },
        ]),
        /refused/,
      ],
      ["a device", rawTar([{ name: "dev", type: "3" }]), /CharacterDevice, which is refused/],
    ];
    for (const [what, archive, message] of attacks) {
      const err = await client.putTar({ dir: target, user: "root" }, Readable.from([archive])).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(ShedError);
      expect((err as ShedError).message, what).toMatch(message);
    }
    // Entries under or named like an existing symlink replace the link (unlink): nothing is written where it pointed.
    await client.putTar(
      { dir: target, user: "root" },
      Readable.from([rawTar([{ name: "preexisting-link/through", body: "x" }])]),
    );
    expect(lstatSync(join(target, "preexisting-link")).isDirectory()).toBe(true);
    expect(readFileSync(join(target, "preexisting-link/through"), "utf8")).toBe("x");
    await client.putTar({ dir: target, user: "root" }, Readable.from([rawTar([{ name: "leaf-link", body: "mine" }])]));
    expect(lstatSync(join(target, "leaf-link")).isFile()).toBe(true);
    expect(execFileSync("ls", ["-A", outside]).toString()).toBe("");

    const big = rawTar([{ name: "big", body: "y".repeat(100_000) }]);
    const tooBig = await client
      .putTar({ dir: target, maxBytes: 50_000, user: "root" }, Readable.from([big]))
      .catch((e) => e);
    expect((tooBig as ShedError).code).toBe("PAYLOAD_TOO_LARGE");
    await expect(client.getTar({ path: join(dir, "nope") })).rejects.toThrow(/does not exist/);
  });
});

describe("streams to guest sockets", () => {
  let tcp: Server;
  let unix: Server;
  const unixPath = join(dir, "relay.sock");
  const upper = (s: import("node:net").Socket) => {
    s.on("data", (b: Buffer) => s.write(b.toString().toUpperCase()));
    s.on("end", () => s.end("|bye"));
  };

  beforeAll(async () => {
    tcp = createServer({ allowHalfOpen: true }, upper);
    unix = createServer({ allowHalfOpen: true }, upper);
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => unix.listen(unixPath, r));
  });
  afterAll(() => {
    tcp.close();
    unix.close();
  });

  it("forwards a port on the guest's loopback, half-close included", async () => {
    const port = (tcp.address() as import("node:net").AddressInfo).port;
    const s = await client.openTcp(port);
    s.end("hello");
    expect((await collect(s)).toString()).toBe("HELLO|bye");
    const free = createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const freePort = (free.address() as import("node:net").AddressInfo).port;
    free.close();
    await expect(client.openTcp(freePort)).rejects.toThrow(/ECONNREFUSED/);
  });

  it("relays a Unix socket", async () => {
    const s = await client.relayUnix(unixPath);
    s.end("agent");
    expect((await collect(s)).toString()).toBe("AGENT|bye");
  });
});

describe("the connection", () => {
  it("reports health and announces credential changes", async () => {
    const h = await client.health();
    expect(h.protocolVersion).toBe(1);
    expect(h.uptimeMs).toBeGreaterThan(0);
    expect(h.draining).toBe(false);
    const cred = join(dir, "cred.json");
    const seen: unknown[] = [];
    const stop = await client.onMessage((m) => seen.push(m), [cred]);
    writeFileSync(cred, "{}");
    await until("a credential-changed message", () => seen.length > 0);
    expect(seen[0]).toMatchObject({ type: "credential-changed", path: cred, exists: true, size: 2 });
    stop();
  });

  it("closes only the connection that sent a bad frame, with an error frame first", async () => {
    const running = await guest.exec({ ...root, argv: ["sh", "-c", "read x; echo survived $x"], stdin: true });
    let out = "";
    running.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    running.stderr.resume();
    for (const garbage of [
      Buffer.from("GET / HTTP/1.1\r\n\r\n"),
      encodeFrame(FrameType.DATA, 5, Buffer.from("no hello first")),
      Buffer.concat([
        encodeJsonFrame(FrameType.HELLO, 0, { protocol: "shed-agent", role: "host", versions: [1], capabilities: [] }),
        encodeFrame(FrameType.END, 1),
      ]),
    ]) {
      const frames = await rawExchange(agent.exec, garbage);
      expect(frames.at(-1)?.type).toBe(FrameType.ERROR);
      expect(JSON.parse(frames.at(-1)?.payload.toString() ?? "{}").code).toMatch(/^[A-Z_]+$/);
    }
    running.stdin?.end("yes\n");
    expect(await running.exited).toBe(0);
    expect(out).toBe("survived yes\n");
    expect((await client.health()).inFlight).toBe(0);
  });

  it("works through a Firecracker-style vsock proxy (CONNECT/OK), keeping bytes sent after the OK line", async () => {
    const proxyPath = join(dir, "fc.sock");
    const proxy = createServer((s) => {
      s.once("data", (line: Buffer) => {
        if (line.toString() !== "CONNECT 1024\n") {
          s.end("NO\n");
          return;
        }
        const up = netConnect(agent.exec);
        // The agent's hello goes out in the same write as the OK line, as a real proxy may do.
        up.once("data", (hello: Buffer) => {
          s.write(Buffer.concat([Buffer.from("OK 1024\n"), hello]));
          up.pipe(s);
          s.pipe(up);
        });
      });
    });
    await new Promise<void>((r) => proxy.listen(proxyPath, r));
    try {
      const c = await AgentClient.connect({ dial: firecrackerDialer(proxyPath, 1024) });
      expect((await runCollect(new AgentGuestExec(c), { ...root, argv: ["echo", "via vsock"] })).stdout).toBe(
        "via vsock\n",
      );
      c.close();
      await expect(AgentClient.connect({ dial: firecrackerDialer(proxyPath, 9) })).rejects.toThrow(/refused port 9/);
    } finally {
      proxy.close();
    }
  });
});

describe("drain and the secret", () => {
  it("finishes in-flight work, refuses new work, honours its timeout, and drains on SIGTERM", async () => {
    const d = removeAtEnd(mkdtempSync(join(tmpdir(), "shed-agent-drain-")));
    const a = await startAgent(d);
    const c = await a.client();
    const g = new AgentGuestExec(c);
    const messages: unknown[] = [];
    await c.onMessage((m) => messages.push(m));
    const inflight = await g.exec({ ...root, argv: ["sh", "-c", "echo started; read x; echo finished"], stdin: true });
    let out = "";
    inflight.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    inflight.stderr.resume();
    await until("started", () => out.includes("started"));
    expect((await c.health()).inFlight).toBe(1);
    // Drain with a short timeout while the command waits for input: it reports the one still running.
    expect(await c.drain(200)).toBe(1);
    await expect(runCollect(g, { ...root, argv: ["true"] })).rejects.toThrow(/draining/);
    await until("a draining message", () => messages.some((m) => (m as { type: string }).type === "draining"));
    // A second drain waits for the command, which finishes once it has its input.
    const drained = c.drain(30_000);
    inflight.stdin?.end("go\n");
    expect(await drained).toBe(0);
    expect(await inflight.exited).toBe(0);
    expect(out).toBe("started\nfinished\n");
    c.close();

    // SIGTERM: the agent drains, then exits.
    const d2 = removeAtEnd(mkdtempSync(join(tmpdir(), "shed-agent-term-")));
    const b = await startAgent(d2);
    const bc = await b.client();
    const late = await new AgentGuestExec(bc).exec({
      ...root,
      argv: ["sh", "-c", "read x; echo done-after-term"],
      stdin: true,
    });
    let lateOut = "";
    late.stdout.on("data", (x: Buffer) => {
      lateOut += x.toString();
    });
    late.stderr.resume();
    b.proc.kill("SIGTERM");
    await until("the agent to start draining", () => b.stderr().includes("SIGTERM: draining"));
    late.stdin?.end("x\n");
    expect(await late.exited).toBe(0);
    expect(lateOut).toBe("done-after-term\n");
    expect(await b.exited).toEqual({ code: 0, signal: null });
    await a.stop();
  });

  it("requires a proof of the secret when started with --secret-file, which never reaches its output", async () => {
    const d = removeAtEnd(mkdtempSync(join(tmpdir(), "shed-agent-secret-")));
    const secret = "0123456789abcdef".repeat(4);
    const file = join(d, "secret");
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    const a = await startAgent(d, { secretFile: file });
    try {
      await expect(a.client()).rejects.toThrow(/requires the VM's secret/);
      const wrong = await a.client("f".repeat(64)).catch((e: unknown) => e);
      expect((wrong as ShedError).details?.agentCode).toBe("AUTH_FAILED");
      // A raw client that skips the proof is refused before anything else.
      const frames = await rawExchange(
        a.exec,
        Buffer.concat([
          encodeJsonFrame(FrameType.HELLO, 0, {
            protocol: "shed-agent",
            role: "host",
            versions: [1],
            capabilities: [],
          }),
          encodeJsonFrame(FrameType.OPEN, 1, { kind: "exec", argv: ["touch", join(d, "pwned")] }),
        ]),
      );
      expect(JSON.parse(frames.at(-1)?.payload.toString() ?? "{}").code).toBe("AUTH_REQUIRED");
      const c = await a.client(secret);
      expect((await runCollect(new AgentGuestExec(c), { ...root, argv: ["echo", "authenticated"] })).stdout).toBe(
        "authenticated\n",
      );
      c.close();
      expect(() => statSync(join(d, "pwned"))).toThrow();
      expect(a.stderr()).not.toContain(secret);
      expect(a.stderr()).toContain("secret required");
    } finally {
      await a.stop();
    }
  });
});

/** Connects, sends bytes, and collects the agent's frames until it closes the connection. */
function rawExchange(path: string, bytes: Buffer): Promise<import("../../src/protocol/agent-frames.js").Frame[]> {
  return new Promise((resolve, reject) => {
    const parser = new FrameParser();
    const frames: import("../../src/protocol/agent-frames.js").Frame[] = [];
    const s = netConnect(path);
    s.on("connect", () => s.write(bytes));
    s.on("data", (b: Buffer) => frames.push(...parser.push(b)));
    s.on("error", reject);
    s.on("close", () => resolve(frames));
  });
}
