import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { encodeArgvCommand } from "../../src/protocol/argv-command.js";
import { tempDir } from "../helpers/cli.js";
import { dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const PTY_RUN = fileURLToPath(new URL("../fixtures/pty-run.py", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns argv (never through a shell), feeds `input` and collects the output; killed after timeoutMs. */
function run(
  argv: string[],
  opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("empty argv");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on("error", () => {
      // ssh may exit before reading its stdin.
    });
    child.stdin.end(opts.input ?? "");
  });
}

let server: TestServer;
let dir: string;
let shed: string;
let key: string;
let otherKey: string;
let knownHosts: string;

/** OpenSSH options shared by ssh and sftp: only our key, only our known_hosts, strict host key checking. */
function sshOptions(identity = key): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    identity,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "BatchMode=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "ConnectTimeout=20",
    "-o",
    "LogLevel=ERROR",
  ];
}

/** `ssh [extra...] -p PORT USER@127.0.0.1 [command]` as an argv. */
function sshArgv(opts: { user?: string; identity?: string; extra?: string[]; command?: string } = {}): string[] {
  return [
    "ssh",
    ...sshOptions(opts.identity),
    "-p",
    String(server.sshPort),
    ...(opts.extra ?? []),
    `${opts.user ?? shed}@127.0.0.1`,
    ...(opts.command !== undefined ? [opts.command] : []),
  ];
}

function ssh(command: string, opts: { extra?: string[]; input?: string; env?: Record<string, string> } = {}) {
  return run(sshArgv({ extra: opts.extra, command }), { input: opts.input, env: opts.env });
}

async function shedStatus(): Promise<string> {
  const res = await server.api("GET", `/api/sheds/${shed}`);
  expect(res.status).toBe(200);
  return res.body.status;
}

beforeAll(async () => {
  server = await startTestServer();
  dir = tempDir("ssh");
  shed = uniqueName("ssh");
  const created = await server.api("POST", "/api/sheds", { name: shed });
  expect(created.status, JSON.stringify(created.body)).toBe(201);

  key = join(dir, "key");
  otherKey = join(dir, "other-key");
  for (const file of [key, otherKey]) {
    const gen = await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "shed-test", "-f", file]);
    expect(gen.code, gen.stderr).toBe(0);
  }
  const registered = await server.api("POST", "/api/keys", { public_key: readFileSync(`${key}.pub`, "utf8") });
  expect(registered.status, JSON.stringify(registered.body)).toBe(201);

  const info = await server.info();
  expect(info.ssh_host_key).toMatch(/^ssh-ed25519 AAAA/);
  knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${server.sshPort} ${info.ssh_host_key}\n`);
});

describe("ssh into a shed with the OpenSSH client", () => {
  it("runs a command with separate stdout and stderr and its exit status", async () => {
    const res = await ssh("echo out; echo err >&2; exit 7");
    expect(res).toEqual({ code: 7, stdout: "out\n", stderr: "err\n" });
  });

  it("runs as shed in /workspace with the shed environment", async () => {
    const res = await ssh('printf "%s\\n" "$SHED_CONTAINER" "$SHED_NAME" "$SHED_WORKSPACE" "$(id -un)" "$(pwd)"');
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout.split("\n")).toEqual(["true", shed, "/workspace", "shed", "/workspace", ""]);
  });

  it("runs the exact argv of a shed-exec: command, without a shell", async () => {
    const res = await ssh(encodeArgvCommand(["printf", "%s|", "a b", "$HOME", "it's"]));
    expect(res).toEqual({ code: 0, stdout: "a b|$HOME|it's|", stderr: "" });
  });

  it("reports a malformed shed-exec: command instead of running anything", async () => {
    const res = await ssh("shed-exec:not base64!");
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.stderr).toContain("the shed-exec command is malformed");
  });

  it("passes stdin to the command", async () => {
    const res = await ssh("cat", { input: "hello\n" });
    expect(res).toEqual({ code: 0, stdout: "hello\n", stderr: "" });
  });

  it("copies a large stdin back unchanged (flow control both ways)", async () => {
    const input = `${randomBytes(3 * 1024 * 1024).toString("base64")}\n`;
    const res = await ssh("cat", { input });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.length).toBe(input.length);
    expect(res.stdout === input).toBe(true);
  });

  it("passes env requests (SetEnv) to the command", async () => {
    const res = await ssh('echo "$FOO"', { extra: ["-o", "SetEnv=FOO=bar"] });
    expect(res).toEqual({ code: 0, stdout: "bar\n", stderr: "" });
  });

  it("gives a terminal with -tt", async () => {
    const res = await ssh("tty; stty size", { extra: ["-tt"] });
    expect(res.code).toBe(0);
    // Piped stdin has no size: the client asks for 0x0 and the server uses 80x24.
    expect(res.stdout).toMatch(/^\/dev\/pts\/\d+\r\n24 80\r\n$/);
  });

  it("gives the client's terminal size and follows window changes", async () => {
    const script = [
      'a=$(stty size); echo "before $a"; echo RESIZE-NOW',
      'i=0; while [ "$(stty size)" = "$a" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done',
      'echo "after $(stty size)"',
    ].join("\n");
    const res = await run([
      "python3",
      PTY_RUN,
      "30",
      "100",
      "RESIZE-NOW",
      "50",
      "132",
      "60",
      "--",
      ...sshArgv({ extra: ["-tt"], command: script }),
    ]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain("before 30 100\r\n");
    expect(res.stdout).toContain("after 50 132\r\n");
  });

  it("forwards direct-tcpip (-W) to the shed's loopback", async () => {
    const port = 8765;
    const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
    // Start a one-shot listener, and return only once the kernel lists it as listening (state 0A).
    const listen = await ssh(
      [
        `nohup sh -c 'printf "hello-from-shed\\n" | nc -l -q 1 127.0.0.1 ${port}' >/dev/null 2>&1 &`,
        `for i in $(seq 100); do grep -q ' 0100007F:${hexPort} 00000000:0000 0A ' /proc/net/tcp && exit 0; sleep 0.05; done`,
        "exit 1",
      ].join("\n"),
    );
    expect(listen, "listener in the shed").toEqual({ code: 0, stdout: "", stderr: "" });

    const res = await run(sshArgv({ extra: ["-W", `127.0.0.1:${port}`] }));
    expect(res.stderr).toBe("");
    expect(res.stdout).toBe("hello-from-shed\n");
    expect(res.code).toBe(0);
  });

  it("refuses direct-tcpip to anything but loopback", async () => {
    const res = await run(sshArgv({ extra: ["-W", "10.1.2.3:80"] }));
    expect(res.code).toBe(255);
    expect(res.stdout).toBe("");
    expect(res.stderr).toContain("forwarding failed");
  });

  it("refuses direct-tcpip to a loopback port nothing listens on, as sshd does", async () => {
    const res = await run(sshArgv({ extra: ["-W", "127.0.0.1:9"] }));
    expect(res.code).toBe(255);
    expect(res.stdout).toBe("");
    expect(res.stderr).toContain("forwarding failed");
  });

  it("serves the sftp subsystem", async () => {
    const local = join(dir, "upload.txt");
    const content = `sftp payload ${Date.now()}\n`;
    writeFileSync(local, content);
    const batch = join(dir, "sftp-batch");
    writeFileSync(batch, `put ${local} /workspace/sftp-upload.txt\nls -l /workspace/sftp-upload.txt\n`);
    const res = await run(["sftp", ...sshOptions(), "-P", String(server.sshPort), "-b", batch, `${shed}@127.0.0.1`]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("sftp-upload.txt");
    // Checked through Docker directly, not through Shed.
    const check = await dockerExec(shed, ["stat", "-c", "%U %n", "/workspace/sftp-upload.txt"]);
    expect(check.stdout).toBe("shed /workspace/sftp-upload.txt\n");
    expect((await dockerExec(shed, ["cat", "/workspace/sftp-upload.txt"])).stdout).toBe(content);
  });

  it("is checked against the pinned host key (a different pinned key fails)", async () => {
    const wrong = join(dir, "known_hosts_wrong");
    writeFileSync(wrong, `[127.0.0.1]:${server.sshPort} ${readFileSync(`${otherKey}.pub`, "utf8")}`);
    const argv = sshArgv({ command: "true" }).map((a) =>
      a === `UserKnownHostsFile=${knownHosts}` ? `UserKnownHostsFile=${wrong}` : a,
    );
    expect(argv).toContain(`UserKnownHostsFile=${wrong}`);
    const res = await run(argv);
    expect(res.code).toBe(255);
    expect(res.stderr).toContain("Host key verification failed");
  });

  it("refuses a key that is not registered", async () => {
    const res = await run(sshArgv({ identity: otherKey, command: "true" }));
    expect(res.code).toBe(255);
    expect(res.stdout).toBe("");
    expect(res.stderr).toContain("Permission denied");
  });

  it("fails with a message naming a shed that does not exist", async () => {
    const missing = uniqueName("missing");
    const res = await run(sshArgv({ user: missing, command: "true" }));
    expect(res.code).toBe(255);
    expect(res.stdout).toBe("");
    expect(res.stderr).toContain(`no shed named "${missing}"`);
  });

  it("starts a stopped shed on connect", async () => {
    const stopped = await server.api("POST", `/api/sheds/${shed}/stop`);
    expect(stopped.status, JSON.stringify(stopped.body)).toBe(200);
    expect(await shedStatus()).toBe("stopped");

    const res = await ssh("echo started");
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe("started\n");
    expect(res.stderr).toContain(`starting ${shed}`);
    expect(await shedStatus()).toBe("running");
  });
});
