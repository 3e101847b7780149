import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import { type CliResult, CliUser } from "../helpers/cli.js";
import { cleanupDocker, containerExists, docker, dockerExec, volumeExists } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Black-box tests of the packaged CLI (bin/shed -> dist/shed.cjs, or straight
 * to OpenSSH on the `shed exec` fast path) against real shed-servers on random
 * ports and the real Docker engine. Run `npm run build` first.
 */

const REPO_ROOT = resolve(__dirname, "../..");
const tempDirs: string[] = [];
const servers: TestServer[] = [];
const users: { cli: CliUser; runtimeDir: string }[] = [];
const localServerPids: number[] = [];

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `shed-test-${label}-`));
  tempDirs.push(dir);
  return dir;
}

/**
 * A CLI user with its own runtime dir, so its multiplexed SSH masters
 * (ControlPersist) have their sockets there and can all be closed at the end:
 * a test server's close() waits for every open SSH connection.
 */
function newUser(extraEnv: Record<string, string> = {}): CliUser {
  const runtimeDir = tempDir("rt");
  const cli = new CliUser({ XDG_RUNTIME_DIR: runtimeDir, ...extraEnv });
  tempDirs.push(cli.dir);
  users.push({ cli, runtimeDir });
  return cli;
}

function closeMasters(runtimeDir: string): void {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const dir = join(runtimeDir, `shed-ssh-${uid}`);
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    const socket = join(dir, entry);
    if (!statSync(socket).isSocket()) continue;
    spawnSync("ssh", ["-o", `ControlPath=${socket}`, "-O", "exit", "shed-test-master"], { stdio: "ignore" });
  }
}

async function newServer(extra: Record<string, unknown> = {}): Promise<TestServer> {
  const server = await startTestServer(extra);
  servers.push(server);
  tempDirs.push(server.dir);
  return server;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

/** Parses stdout as exactly one JSON document, with the whole result in the failure message. */
function json(res: CliResult): any {
  try {
    return JSON.parse(res.stdout);
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${res.code}):\n${res.stdout}\nstderr:\n${res.stderr}`);
  }
}

function show(res: CliResult): string {
  return `exit ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`;
}

async function ok(user: CliUser, args: string[], env?: Record<string, string>): Promise<CliResult> {
  const res = await user.run(args, env ? { env } : {});
  expect(res.code, `shed ${args.join(" ")}\n${show(res)}`).toBe(0);
  return res;
}

async function shedStatus(user: CliUser, name: string): Promise<string | undefined> {
  const list = json(await ok(user, ["--json", "list"]));
  return list.sheds.find((s: { name: string }) => s.name === name)?.status;
}

/** A local git repository with one commit, made with the real git. */
function makeGitRepo(files: Record<string, string>): string {
  const dir = tempDir("repo");
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", dir, "-c", "user.name=Shed Test", "-c", "user.email=test@shed.invalid", ...args], {
      stdio: "pipe",
    });
  git("init", "-q", "-b", "main");
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  git("add", "-A");
  git("commit", "-q", "-m", "initial commit");
  return dir;
}

/** Every file under `dir`, read as text (binary files too: a secret in them still shows). */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const file = join(dir, rel);
    if (statSync(file).isFile() && readFileSync(file, "latin1").includes(needle)) hits.push(file);
  }
  return hits;
}

function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** Stops a background server by pid and waits until it is gone (a zombie counts as gone). */
async function stopProcess(pid: number): Promise<void> {
  const alive = () => {
    const state = processState(pid);
    return state !== undefined && state !== "Z";
  };
  if (!alive()) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (alive()) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

let srv: TestServer;
/** The user most tests share: server `dev` (srv) added and the default. */
let user: CliUser;

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, "dist", "shed.cjs")) || !existsSync(join(REPO_ROOT, "dist", "shed-server.mjs"))) {
    throw new Error("dist/ is missing: run `npm run build` before these tests");
  }
  srv = await newServer();
  user = newUser();
  await ok(user, ["server", "add", "127.0.0.1", "--port", String(srv.httpPort), "--name", "dev"]);
});

afterAll(async () => {
  for (const pid of localServerPids) await stopProcess(pid).catch(() => {});
  for (const u of users) closeMasters(u.runtimeDir);
  await Promise.all(servers.map((s) => s.close().catch(() => {})));
  await cleanupDocker();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe("shed server", () => {
  test("add pins the host key, makes and registers the CLI key, and records the server", async () => {
    const u = newUser();
    const res = await ok(u, ["server", "add", "127.0.0.1", "--port", String(srv.httpPort), "--name", "dev"]);
    expect(res.stdout).toContain("added server dev");
    const info = await srv.info();

    const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
    expect(cfg).toEqual({
      default_server: "dev",
      servers: {
        dev: { host: "127.0.0.1", http_port: srv.httpPort, ssh_port: srv.sshPort, host_key: info.ssh_host_key },
      },
    });

    const knownHosts = readFileSync(join(u.dir, "known_hosts"), "utf8");
    expect(knownHosts).toContain(info.ssh_host_key);

    const keyFile = join(u.dir, "id_ed25519");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const publicKey = readFileSync(`${keyFile}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    expect(publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    expect(readFileSync(join(srv.dir, "data", "authorized_keys"), "utf8")).toContain(publicKey);

    const list = await ok(u, ["server", "list"]);
    expect(list.stdout).toMatch(
      new RegExp(`^dev\\s+127\\.0\\.0\\.1\\s+${srv.httpPort}\\s+${srv.sshPort}\\s+\\*$`, "m"),
    );
    expect(json(await ok(u, ["--json", "server", "list"]))).toEqual({
      servers: [{ name: "dev", host: "127.0.0.1", http_port: srv.httpPort, ssh_port: srv.sshPort, default: true }],
    });
  });

  test("set-default switches the server commands talk to; remove forgets a server", async () => {
    const srv2 = await newServer({ name: "second" });
    const srv3 = await newServer({ name: "third" });
    const u = newUser();
    const name = uniqueName("reg");
    await ok(u, ["server", "add", "127.0.0.1", "--port", String(srv.httpPort), "--name", "dev"]);
    await ok(u, ["server", "add", "127.0.0.1", "--port", String(srv2.httpPort), "--name", "dev2"]);
    await ok(u, ["server", "add", "127.0.0.1", "--port", String(srv3.httpPort), "--name", "gone"]);
    await ok(u, ["create", name]);

    // The first server added stays the default.
    const listed = json(await ok(u, ["--json", "server", "list"])).servers;
    expect(listed.map((s: { name: string; default: boolean }) => [s.name, s.default])).toEqual([
      ["dev", true],
      ["dev2", false],
      ["gone", false],
    ]);
    const viaDev = json(await ok(u, ["--json", "list"])).sheds.find((s: { name: string }) => s.name === name);
    expect(viaDev?.server).toBe("dev");

    await ok(u, ["server", "set-default", "dev2"]);
    const viaDev2 = json(await ok(u, ["--json", "list"])).sheds.find((s: { name: string }) => s.name === name);
    expect(viaDev2?.server).toBe("dev2");
    // An empty $SHED_SERVER is no choice at all (the launcher treats it so too): the default applies.
    const emptyEnv = json(await ok(u, ["--json", "list"], { SHED_SERVER: "" }));
    expect(emptyEnv.sheds.find((s: { name: string }) => s.name === name)?.server).toBe("dev2");
    expect((await ok(u, ["exec", name, "--", "echo", "empty-env"], { SHED_SERVER: "" })).stdout).toBe("empty-env\n");

    // A default whose server is gone: list fails, naming that server's address, so it really talks to the default.
    await srv3.close();
    await ok(u, ["server", "set-default", "gone"]);
    const failed = await u.run(["--json", "list"]);
    expect(failed.code, show(failed)).toBe(1);
    expect(json(failed).error.code).toBe("SERVER_UNREACHABLE");
    expect(json(failed).error.message).toContain(`127.0.0.1:${srv3.httpPort}`);
    const down = await u.run(["exec", name, "--", "true"]);
    expect(down.code, show(down)).not.toBe(0);
    await ok(u, ["--server", "dev", "list"]);

    // $SHED_SERVER picks the server for that one command only; the fast path of `shed exec` must follow the default.
    await ok(u, ["server", "set-default", "dev"], { SHED_SERVER: "gone" });
    const fast = await ok(u, ["exec", name, "--", "echo", "via-default"]);
    expect(fast.stdout).toBe("via-default\n");
    const viaEnv = await u.run(["--json", "list"], { env: { SHED_SERVER: "gone" } });
    expect(json(viaEnv).error.code).toBe("SERVER_UNREACHABLE");

    const removed = await ok(u, ["server", "remove", "gone"]);
    expect(removed.stdout).toContain("removed server gone");
    await ok(u, ["server", "remove", "dev2"]);
    expect(json(await ok(u, ["--json", "server", "list"])).servers.map((s: { name: string }) => s.name)).toEqual([
      "dev",
    ]);
    expect(Object.keys(parseYaml(readFileSync(u.configFile, "utf8")).servers)).toEqual(["dev"]);
    expect(readFileSync(join(u.dir, "known_hosts"), "utf8")).not.toContain("shed.dev2");
    const unknown = await u.run(["--json", "--server", "dev2", "list"]);
    expect(unknown.code).toBe(1);
    expect(json(unknown).error.code).toBe("SERVER_NOT_FOUND");
    const removeAgain = await u.run(["--json", "server", "remove", "dev2"]);
    expect(removeAgain.code).toBe(1);
    expect(json(removeAgain).error.code).toBe("SERVER_NOT_FOUND");
  });

  test("add to a port with nothing listening fails with SERVER_UNREACHABLE and changes nothing", async () => {
    const u = newUser();
    const port = await freePort();
    const res = await u.run(["server", "add", "127.0.0.1", "--port", String(port)]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain(`cannot reach shed-server 127.0.0.1 at http://127.0.0.1:${port}`);
    expect(res.stdout).toBe("");
    const asJson = await u.run(["--json", "server", "add", "127.0.0.1", "--port", String(port)]);
    expect(asJson.code).toBe(1);
    expect(json(asJson).error.code).toBe("SERVER_UNREACHABLE");
    expect(existsSync(u.configFile)).toBe(false);
  });
});

describe("shed create", () => {
  test("--repo with a local checkout: the commit is in /workspace, owned by shed, with plain progress lines", async () => {
    const repo = makeGitRepo({ "hello.txt": "hello from the repo\n", "src/deep/file.txt": "deep\n" });
    const name = uniqueName("local-repo");
    const res = await ok(user, ["create", name, "--repo", repo]);
    expect(res.stdout).toContain(`shed ${name}: running`);
    // Not a terminal: one plain line per step start and end, no spinner or cursor control.
    for (const title of ["Storage setup", "Container start", "Repo clone"]) {
      expect(res.stderr).toMatch(new RegExp(`^… ${title}$`, "m"));
      expect(res.stderr).toMatch(new RegExp(`^✓ ${title} \\(\\d+(ms|s|m)`, "m"));
    }
    expect(res.stderr).not.toContain("\r");
    expect(res.stderr).not.toContain("\u001b[");

    const cat = await ok(user, ["exec", name, "--", "cat", "/workspace/hello.txt"]);
    expect(cat.stdout).toBe("hello from the repo\n");
    const log = await ok(user, ["exec", name, "--", "git", "-C", "/workspace", "log", "-1", "--format=%s"]);
    expect(log.stdout).toBe("initial commit\n");

    // Checked with the plain Docker API, as root, independently of Shed.
    const notShed = await dockerExec(name, ["find", "/workspace", "!", "-user", "shed"], "root");
    expect(notShed).toEqual({ code: 0, stdout: "", stderr: "" });
    const deep = await dockerExec(name, ["stat", "-c", "%U:%G", "/workspace/src/deep/file.txt"], "root");
    expect(deep.stdout.trim()).toBe("shed:shed");
  });

  test("--json create and --json list print one JSON document each on stdout", async () => {
    const name = uniqueName("json");
    const res = await ok(user, ["--json", "create", name]);
    const shed = json(res);
    expect(shed).toMatchObject({ name, status: "running", backend: "docker" });
    expect(res.stderr).toMatch(/^… Storage setup$/m);

    const list = json(await ok(user, ["--json", "list"]));
    expect(list.sheds.find((s: { name: string }) => s.name === name)).toMatchObject({
      name,
      status: "running",
      server: "dev",
    });
  });

  test("--json errors are {error:{code}} on stdout with exit code 1", async () => {
    const missing = uniqueName("missing");
    const stop = await user.run(["--json", "stop", missing]);
    expect(stop.code, show(stop)).toBe(1);
    expect(json(stop).error).toMatchObject({ code: "SHED_NOT_FOUND" });
    expect(json(stop).error.message).toContain(missing);

    const bad = await user.run(["--json", "create", "Bad_Name"]);
    expect(bad.code).toBe(1);
    expect(json(bad).error.code).toBe("INVALID_SHED_NAME");
  });
});

describe("shed exec", () => {
  let name: string;
  /** A `node` that fails loudly: with it first on PATH only the launcher's fast path can succeed. */
  let noNodePath: string;

  beforeAll(async () => {
    name = uniqueName("exec");
    await ok(user, ["create", name]);
    const shim = tempDir("no-node");
    writeFileSync(join(shim, "node"), "#!/bin/sh\necho 'node was started' >&2\nexit 99\n");
    chmodSync(join(shim, "node"), 0o755);
    noNodePath = `${shim}:${process.env.PATH ?? ""}`;
  });

  const script = ["sh", "-c", "echo out; echo err >&2; exit 3"];

  test("fast path (straight to OpenSSH): stdout, stderr and the exit code are kept apart", async () => {
    const res = await user.run(["exec", name, "--", ...script], { env: { PATH: noNodePath } });
    expect(res).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
  });

  test("Node path (global options before exec): stdout, stderr and the exit code are kept apart", async () => {
    expect(await user.run(["--server", "dev", "exec", name, "--", ...script])).toEqual({
      code: 3,
      stdout: "out\n",
      stderr: "err\n",
    });
    expect(await user.run(["--json", "exec", name, "--", ...script])).toEqual({
      code: 3,
      stdout: "out\n",
      stderr: "err\n",
    });
  });

  test("arguments with spaces, quotes, $ and empty strings arrive intact on both paths", async () => {
    const argv = ["printf", "%s|", "a b", "it's", "$HOME", "", 'say "hi"', "*"];
    const expected = 'a b|it\'s|$HOME||say "hi"|*|';
    const fast = await user.run(["exec", name, "--", ...argv], { env: { PATH: noNodePath } });
    expect(fast, show(fast)).toEqual({ code: 0, stdout: expected, stderr: "" });
    const viaNode = await user.run(["--server", "dev", "exec", name, "--", ...argv]);
    expect(viaNode, show(viaNode)).toEqual({ code: 0, stdout: expected, stderr: "" });
  });

  test("stdin reaches the command", async () => {
    const res = await user.run(["exec", name, "--", "tr", "a-z", "A-Z"], { input: "piped in\n" });
    expect(res).toEqual({ code: 0, stdout: "PIPED IN\n", stderr: "" });
  });
});

describe("shed stop / start", () => {
  test("stop and start change the status and keep /workspace; stopping twice is SHED_ALREADY_STOPPED", async () => {
    const name = uniqueName("stopstart");
    await ok(user, ["create", name]);
    await ok(user, ["exec", name, "--", "sh", "-c", "echo kept > /workspace/keep.txt"]);

    const stopped = await ok(user, ["stop", name]);
    expect(stopped.stdout).toContain(`stopped ${name}`);
    expect(await shedStatus(user, name)).toBe("stopped");
    expect((await docker.getContainer(`shed-${name}`).inspect()).State.Running).toBe(false);

    const again = await user.run(["--json", "stop", name]);
    expect(again.code, show(again)).toBe(1);
    expect(json(again).error.code).toBe("SHED_ALREADY_STOPPED");
    const againHuman = await user.run(["stop", name]);
    expect(againHuman.code).toBe(1);
    expect(againHuman.stderr).toContain("already stopped");

    const started = await ok(user, ["start", name]);
    expect(started.stdout).toContain(`started ${name}`);
    expect(await shedStatus(user, name)).toBe("running");
    expect((await docker.getContainer(`shed-${name}`).inspect()).State.Running).toBe(true);
    expect((await ok(user, ["exec", name, "--", "cat", "/workspace/keep.txt"])).stdout).toBe("kept\n");
  });
});

describe("shed delete", () => {
  test("without --force and without a terminal it refuses and leaves the shed", async () => {
    const name = uniqueName("del-refuse");
    await ok(user, ["create", name]);
    const res = await user.run(["delete", name]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain("refusing to delete without confirmation");
    expect(res.stderr).toContain("--force");
    expect(await containerExists(name)).toBe(true);
    expect(await volumeExists(name)).toBe(true);
    expect(await shedStatus(user, name)).toBe("running");
  });

  test("--force removes the container and the volume", async () => {
    const name = uniqueName("del-force");
    await ok(user, ["create", name]);
    const res = await ok(user, ["delete", name, "--force"]);
    expect(res.stdout).toContain(`deleted ${name}`);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
    expect(await shedStatus(user, name)).toBeUndefined();
  });

  test("--keep-volume keeps the workspace volume (and a new shed of that name gets it back)", async () => {
    const name = uniqueName("del-keep");
    await ok(user, ["create", name]);
    await ok(user, ["exec", name, "--", "sh", "-c", "echo survived > /workspace/kept.txt"]);
    const res = json(await ok(user, ["--json", "delete", name, "--force", "--keep-volume"]));
    expect(res).toEqual({ deleted: name, kept_volume: true });
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(true);

    await ok(user, ["create", name]);
    expect((await ok(user, ["exec", name, "--", "cat", "/workspace/kept.txt"])).stdout).toBe("survived\n");
  });
});

describe("bad input gets a clear error and changes nothing", () => {
  async function expectRejected(
    u: CliUser,
    args: string[],
    name: string,
    expected: { code: string; message: string | RegExp },
  ): Promise<void> {
    const human = await u.run(args);
    expect(human.code, show(human)).toBe(1);
    expect(human.stdout).toBe("");
    if (typeof expected.message === "string") expect(human.stderr).toContain(expected.message);
    else expect(human.stderr).toMatch(expected.message);
    const asJson = await u.run(["--json", ...args]);
    expect(asJson.code, show(asJson)).toBe(1);
    expect(json(asJson).error.code).toBe(expected.code);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  }

  test("invalid shed name", async () => {
    await expectRejected(user, ["create", "Bad_Name"], "Bad_Name", {
      code: "INVALID_SHED_NAME",
      message: 'invalid shed name "Bad_Name"',
    });
    expect(await containerExists("bad_name")).toBe(false);
  });

  test("unknown backend", async () => {
    const name = uniqueName("kvm");
    await expectRejected(user, ["create", name, "--backend", "kvm"], name, {
      code: "INVALID_REQUEST",
      message: 'unknown backend "kvm"',
    });
  });

  test("--repo together with --local-dir", async () => {
    const name = uniqueName("both");
    const dir = tempDir("localdir");
    await expectRejected(user, ["create", name, "--repo", "https://example.invalid/x.git", "--local-dir", dir], name, {
      code: "INVALID_REQUEST",
      message: "--repo and --local-dir cannot be used together",
    });
  });

  test("a --local-dir that does not exist", async () => {
    const name = uniqueName("nodir");
    const missing = join(tempDir("parent"), "does-not-exist");
    await expectRejected(user, ["create", name, "--local-dir", missing], name, {
      code: "LOCAL_DIR_NOT_FOUND",
      message: missing,
    });
  });

  test("an unknown server", async () => {
    const name = uniqueName("nosrv");
    await expectRejected(user, ["--server", "nope", "create", name], name, {
      code: "SERVER_NOT_FOUND",
      message: 'no server named "nope"',
    });
    const exec = await user.run(["--server", "nope", "exec", name, "--", "true"]);
    expect(exec.code).toBe(1);
    expect(exec.stderr).toContain('no server named "nope"');
  });

  test("a malformed client config names file:line:col", async () => {
    const u = newUser();
    await ok(u, ["server", "add", "127.0.0.1", "--port", String(srv.httpPort), "--name", "dev"]);
    const valid = readFileSync(u.configFile, "utf8");
    const lines = valid.split("\n");
    // An unknown key on a known line: after the comment line, before the rest.
    const badLine = 2;
    writeFileSync(u.configFile, [lines[0], "colour: blue", ...lines.slice(1)].join("\n"));
    const name = uniqueName("badcfg");
    await expectRejected(u, ["create", name], name, {
      code: "INVALID_CONFIG",
      message: `${u.configFile}:${badLine}:1: colour: unknown field`,
    });
    const list = await u.run(["list"]);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain(`config.yaml:${badLine}:1`);
    // Nothing rewrote the broken file.
    expect(readFileSync(u.configFile, "utf8")).toContain("colour: blue");
  });
});

describe("repo URL with credentials", () => {
  test("a failed clone warns, the shed still runs, and the secret appears nowhere", async () => {
    const secret = "s3cr3t-token";
    const url = `https://user:${secret}@127.0.0.1:9/x.git`;
    const name = uniqueName("secret");
    const res = await ok(user, ["create", name, "--repo", url]);
    expect(res.stdout).toContain(`shed ${name}: running`);
    expect(res.stderr).toMatch(/warning \(clone\): .*git clone .*failed/);
    expect(res.stdout + res.stderr).not.toContain(secret);

    const list = await ok(user, ["--json", "list"]);
    expect(list.stdout).not.toContain(secret);
    const shed = json(list).sheds.find((s: { name: string }) => s.name === name);
    expect(shed.status).toBe("running");
    expect(shed.repo).toContain("127.0.0.1:9/x.git");
    expect(shed.warnings.join("\n")).toContain("clone");

    const showed = await ok(user, ["--json", "show", name]);
    expect(showed.stdout).not.toContain(secret);
    expect(filesContaining(srv.dir, secret)).toEqual([]);
    const inspect = await docker.getContainer(`shed-${name}`).inspect();
    expect(JSON.stringify(inspect)).not.toContain(secret);
    expect(JSON.stringify(inspect.Config.Labels)).toContain("127.0.0.1:9/x.git");
  });
});

describe("shed version", () => {
  test("prints the version", async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
    expect((await ok(user, ["version"])).stdout).toBe(`shed ${version}\n`);
    expect(json(await ok(user, ["--json", "version"]))).toEqual({ version });
  });

  test("writes its code cache, named after the bundle it was made from", async () => {
    await ok(user, ["version"]);
    const caches = readdirSync(join(REPO_ROOT, "dist")).filter((f) => f.endsWith(".cache"));
    const hash = createHash("sha256")
      .update(readFileSync(join(REPO_ROOT, "dist", "shed-main.cjs")))
      .digest("hex");
    expect(caches).toEqual([`shed-main.${hash.slice(0, 16)}.cache`]);
    expect(statSync(join(REPO_ROOT, "dist", caches[0] as string)).size).toBeGreaterThan(10_000);
  });
});

describe("local server on demand", () => {
  test("with no server configured, shed list starts a local shed-server in the background and uses it", async () => {
    const [httpPort, sshPort] = [await freePort(), await freePort()];
    const u = newUser({ SHED_LOCAL_HTTP_PORT: String(httpPort), SHED_LOCAL_SSH_PORT: String(sshPort) });
    writeFileSync(u.configFile, "");
    const pidFile = join(u.dir, "local-server.pid");
    try {
      const first = await ok(u, ["list"]);
      expect(first.stderr).toContain("starting a local shed-server");
      expect(existsSync(pidFile)).toBe(true);
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      localServerPids.push(pid);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      expect(cmdline).toContain(join(REPO_ROOT, "dist", "shed-server.mjs"));

      const info = await (await fetch(`http://127.0.0.1:${httpPort}/api/info`)).json();
      expect(info).toMatchObject({ name: "local", http_port: httpPort, ssh_port: sshPort });
      const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
      expect(cfg.default_server).toBe("local");
      expect(cfg.servers.local).toEqual({
        host: "127.0.0.1",
        http_port: httpPort,
        ssh_port: sshPort,
        host_key: info.ssh_host_key,
      });

      // The second time it is already there.
      const second = await ok(u, ["--json", "list"]);
      expect(second.stderr).not.toContain("starting");
      expect(Array.isArray(json(second).sheds)).toBe(true);
    } finally {
      if (existsSync(pidFile)) await stopProcess(Number(readFileSync(pidFile, "utf8").trim()));
    }
    const after = await fetch(`http://127.0.0.1:${httpPort}/api/info`).then(
      () => "answered",
      () => "refused",
    );
    expect(after).toBe("refused");
  });
});
