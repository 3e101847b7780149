import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import type { TestServer } from "../helpers/server.js";

/**
 * Agent forwarding (ssh -A, shed exec -A) with a real ssh-agent holding a key,
 * the real OpenSSH client, a real shed-server and a real Docker shed.
 */

let srv: TestServer;
let user: CliUser;
let shed: string;
let dir: string;
let agent: ChildProcess;
let agentSock: string;
let agentKey: string;
let fingerprint: string;

useCliServer((server, cli) => {
  srv = server;
  user = cli;
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(argv: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const [cmd, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd ?? "false", args, {
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

/** The real OpenSSH client with the CLI user's generated config, never through a shared master. */
function sshArgv(forward: boolean, command: string): string[] {
  return [
    "ssh",
    "-F",
    join(user.dir, "ssh_config"),
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    ...(forward ? ["-A"] : ["-o", "ForwardAgent=no"]),
    "-l",
    shed,
    "shed.dev",
    command,
  ];
}

const ssh = (forward: boolean, command: string, input?: string) =>
  run(sshArgv(forward, command), { env: { SSH_AUTH_SOCK: agentSock, HOME: user.dir }, input });

/** Signs "hello shed" in the shed with the agent's key (its public half on stdin) and prints the signature. */
const SIGN_SCRIPT =
  'd=$(mktemp -d) && cat > "$d/k.pub" && printf "hello shed" > "$d/msg" && ssh-keygen -Y sign -q -f "$d/k.pub" -n file "$d/msg" && cat "$d/msg.sig"';

async function verifiesOnHost(signature: string): Promise<Run> {
  const work = tempDir("agent-verify");
  writeFileSync(join(work, "allowed_signers"), `agent@shed ${readFileSync(`${agentKey}.pub`, "utf8")}`);
  writeFileSync(join(work, "msg.sig"), signature);
  const argv = ["ssh-keygen", "-Y", "verify", "-f", join(work, "allowed_signers"), "-I", "agent@shed", "-n", "file"];
  return run([...argv, "-s", join(work, "msg.sig")], { input: "hello shed" });
}

async function waitGone(path: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if ((await dockerExec(shed, ["test", "-e", path])).code !== 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

beforeAll(async () => {
  dir = tempDir("agent");
  shed = uniqueName("agent");
  const created = await srv.api("POST", "/api/sheds", { name: shed });
  expect(created.status, JSON.stringify(created.body)).toBe(201);

  agentSock = join(dir, "agent.sock");
  agent = spawn("ssh-agent", ["-D", "-a", agentSock], { stdio: "ignore" });
  for (let i = 0; i < 50 && !existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 50));
  agentKey = join(dir, "agent-key");
  const gen = await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "agent-key", "-f", agentKey]);
  expect(gen.code, gen.stderr).toBe(0);
  const added = await run(["ssh-add", agentKey], { env: { SSH_AUTH_SOCK: agentSock } });
  expect(added.code, added.stderr).toBe(0);
  const fp = await run(["ssh-keygen", "-l", "-f", `${agentKey}.pub`]);
  fingerprint = fp.stdout.split(" ")[1] ?? "";
  expect(fingerprint).toMatch(/^SHA256:/);
});

afterAll(() => {
  agent?.kill();
});

describe("agent forwarding with the OpenSSH client", () => {
  it("without -A there is no socket and no SSH_AUTH_SOCK", async () => {
    const res = await ssh(
      false,
      'echo "[$SSH_AUTH_SOCK]"; ls -d /tmp/shed-agent-* 2>/dev/null; ssh-add -l; echo "rc=$?"',
    );
    expect(res.stdout).toBe("[]\nrc=2\n");
  });

  it("ssh -A: ssh-add -l lists the key, through a private socket that goes with the connection", async () => {
    const res = await ssh(
      true,
      'echo "$SSH_AUTH_SOCK"; stat -c "%a %U %F" "$SSH_AUTH_SOCK" "$(dirname "$SSH_AUTH_SOCK")"; ssh-add -l',
    );
    expect(res.code, res.stderr).toBe(0);
    const [path, sockStat, dirStat, listed] = res.stdout.trim().split("\n");
    expect(path).toMatch(/^\/tmp\/shed-agent-[0-9a-f]+\/agent\.sock$/);
    expect(sockStat).toBe("600 shed socket");
    expect(dirStat).toBe("700 shed directory");
    expect(listed).toContain(fingerprint);
    expect(listed).toContain("agent-key");
    expect(await waitGone(path ?? "")).toBe(true);
    expect(await waitGone((path ?? "").replace(/\/agent\.sock$/, ""))).toBe(true);
  });

  it("ssh -A: ssh-keygen -Y sign through the agent makes a signature that verifies on the host", async () => {
    const res = await ssh(true, SIGN_SCRIPT, readFileSync(`${agentKey}.pub`, "utf8"));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("BEGIN SSH SIGNATURE");
    const verified = await verifiesOnHost(res.stdout);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('Good "file" signature for agent@shed');
  });

  it("another user in the shed cannot use the socket", { timeout: 20_000 }, async () => {
    const made = await dockerExec(shed, ["useradd", "-m", "other"], "root");
    expect(made.code, made.stderr).toBe(0);
    const held = spawn("ssh", sshArgv(true, 'echo "$SSH_AUTH_SOCK"; exec sleep 60').slice(1), {
      env: { ...process.env, SSH_AUTH_SOCK: agentSock, HOME: user.dir },
      stdio: ["pipe", "pipe", "pipe"],
    });
    try {
      const path = await new Promise<string>((resolve) =>
        held.stdout.once("data", (d: Buffer) => resolve(d.toString().trim())),
      );
      const mine = await dockerExec(shed, ["env", `SSH_AUTH_SOCK=${path}`, "ssh-add", "-l"]);
      expect(mine.stdout).toContain(fingerprint);
      // The stable link for tmux sessions follows this, the latest, forwarding connection.
      expect((await dockerExec(shed, ["readlink", "/home/shed/.ssh-agent-shed.sock"])).stdout.trim()).toBe(path);
      const theirs = await dockerExec(shed, ["env", `SSH_AUTH_SOCK=${path}`, "ssh-add", "-l"], "other");
      expect(theirs.code).toBe(2);
      expect(theirs.stdout).not.toContain(fingerprint);
    } finally {
      held.kill();
    }
  });
});

describe("shed exec -A", () => {
  it("signs through the forwarded agent; without -A the command sees no agent", async () => {
    const env = { SSH_AUTH_SOCK: agentSock };
    const plain = await user.run(["exec", shed, "--", "bash", "-c", 'echo "[$SSH_AUTH_SOCK]"'], { env });
    expect(plain.stdout, show(plain)).toBe("[]\n");

    const pub = readFileSync(`${agentKey}.pub`, "utf8");
    const signed = await user.run(["exec", "-A", shed, "--", "bash", "-c", SIGN_SCRIPT], { env, input: pub });
    expect(signed.code, show(signed)).toBe(0);
    const verified = await verifiesOnHost(signed.stdout);
    expect(verified.code, verified.stderr).toBe(0);

    const listed = await user.run(["exec", "-A", shed, "--", "ssh-add", "-l"], { env });
    expect(listed.stdout, show(listed)).toContain(fingerprint);
  });
});
