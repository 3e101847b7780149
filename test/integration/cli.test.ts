import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import { type CliUser, cliOk, json, newCliUser, show, tempDir } from "../helpers/cli.js";
import { addServerAs, useCliServer } from "../helpers/cli-server.js";
import { containerExists, docker, dockerExec, volumeExists } from "../helpers/docker.js";
import { freePort, makeGitRepo } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Black-box tests of the packaged CLI (bin/shed -> dist/shed.cjs, or straight
 * to OpenSSH on the `shed exec` fast path) against real shed-servers on random
 * ports and the real Docker engine. Run `npm run build` first.
 */

let srv: TestServer;
/** The user most tests share: server `dev` (srv) added and the default. */
let user: CliUser;
useCliServer((server, cli) => {
  srv = server;
  user = cli;
});

async function shedStatus(cli: CliUser, name: string): Promise<string | undefined> {
  const list = json(await cliOk(cli, ["--json", "list"]));
  return list.sheds.find((s: { name: string }) => s.name === name)?.status;
}

describe("shed server", () => {
  test("add pins the host key, makes and registers the CLI key, and records the server", async () => {
    const u = newCliUser();
    const res = await cliOk(u, ["server", "add", "127.0.0.1", "--port", String(srv.httpPort), "--name", "dev"], {
      SHED_TOKEN: srv.token,
    });
    expect(res.stdout).toContain("added server dev (127.0.0.1");
    expect(res.stdout).toContain("plain HTTP");
    const info = await srv.info();

    const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
    expect(cfg).toEqual({
      default_server: "dev",
      servers: {
        dev: {
          host: "127.0.0.1",
          http_port: srv.httpPort,
          ssh_port: srv.sshPort,
          host_key: info.ssh_host_key,
          token: srv.token,
        },
      },
    });

    const knownHosts = readFileSync(join(u.dir, "known_hosts"), "utf8");
    expect(knownHosts).toContain(info.ssh_host_key);

    const keyFile = join(u.dir, "id_ed25519");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const publicKey = readFileSync(`${keyFile}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    expect(publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    expect(readFileSync(join(srv.dir, "data", "authorized_keys"), "utf8")).toContain(publicKey);

    const list = await cliOk(u, ["server", "list"]);
    expect(list.stdout).toMatch(
      new RegExp(`^dev\\s+127\\.0\\.0\\.1\\s+${srv.httpPort}\\s+${srv.sshPort}\\s+no\\s+\\*$`, "m"),
    );
    expect(json(await cliOk(u, ["--json", "server", "list"]))).toEqual({
      servers: [
        { name: "dev", host: "127.0.0.1", http_port: srv.httpPort, ssh_port: srv.sshPort, tls: null, default: true },
      ],
    });
  });

  test("set-default switches the server commands talk to; remove forgets a server", async () => {
    const srv2 = await startTestServer({ name: "second" });
    const srv3 = await startTestServer({ name: "third" });
    const u = newCliUser();
    const name = uniqueName("reg");
    await addServerAs(u, srv, "dev");
    await addServerAs(u, srv2, "dev2");
    await addServerAs(u, srv3, "gone");
    const name2 = uniqueName("reg2");
    await cliOk(u, ["create", name]);
    await cliOk(u, ["--server", "dev2", "create", name2]);

    // The first server added stays the default.
    const listed = json(await cliOk(u, ["--json", "server", "list"])).servers;
    expect(listed.map((s: { name: string; default: boolean }) => [s.name, s.default])).toEqual([
      ["dev", true],
      ["dev2", false],
      ["gone", false],
    ]);
    // Each server lists its own sheds only, so the list shows which server a command talked to.
    const names = async (env?: Record<string, string>) =>
      json(await cliOk(u, ["--json", "list"], env)).sheds.map((s: { name: string; server: string }) => [
        s.name,
        s.server,
      ]);
    expect(await names()).toContainEqual([name, "dev"]);
    expect((await names()).map(([n]: string[]) => n)).not.toContain(name2);

    await cliOk(u, ["server", "set-default", "dev2"]);
    expect(await names()).toContainEqual([name2, "dev2"]);
    expect((await names()).map(([n]: string[]) => n)).not.toContain(name);
    // An empty $SHED_SERVER is no choice at all (the launcher treats it so too): the default applies.
    expect(await names({ SHED_SERVER: "" })).toContainEqual([name2, "dev2"]);
    expect((await cliOk(u, ["exec", name2, "--", "echo", "empty-env"], { SHED_SERVER: "" })).stdout).toBe(
      "empty-env\n",
    );

    // A default whose server is gone: list fails, naming that server's address, so it really talks to the default.
    await srv3.close();
    await cliOk(u, ["server", "set-default", "gone"]);
    const failed = await u.run(["--json", "list"]);
    expect(failed.code, show(failed)).toBe(1);
    expect(json(failed).error.code).toBe("SERVER_UNREACHABLE");
    expect(json(failed).error.message).toContain(`127.0.0.1:${srv3.httpPort}`);
    const down = await u.run(["exec", name, "--", "true"]);
    expect(down.code, show(down)).not.toBe(0);
    await cliOk(u, ["--server", "dev", "list"]);

    // $SHED_SERVER picks the server for that one command only; the fast path of `shed exec` must follow the default.
    await cliOk(u, ["server", "set-default", "dev"], { SHED_SERVER: "gone" });
    const fast = await cliOk(u, ["exec", name, "--", "echo", "via-default"]);
    expect(fast.stdout).toBe("via-default\n");
    const viaEnv = await u.run(["--json", "list"], { env: { SHED_SERVER: "gone" } });
    expect(json(viaEnv).error.code).toBe("SERVER_UNREACHABLE");

    const removed = await cliOk(u, ["server", "remove", "gone"]);
    expect(removed.stdout).toContain("removed server gone");
    await cliOk(u, ["server", "remove", "dev2"]);
    expect(json(await cliOk(u, ["--json", "server", "list"])).servers.map((s: { name: string }) => s.name)).toEqual([
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
    const u = newCliUser();
    const port = await freePort();
    const env = { env: { SHED_TOKEN: srv.token } };
    const res = await u.run(["server", "add", "127.0.0.1", "--port", String(port)], env);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain(`cannot reach shed-server 127.0.0.1 at 127.0.0.1:${port} (ECONNREFUSED)`);
    expect(res.stdout).toBe("");
    const asJson = await u.run(["--json", "server", "add", "127.0.0.1", "--port", String(port)], env);
    expect(asJson.code).toBe(1);
    expect(json(asJson).error.code).toBe("SERVER_UNREACHABLE");
    expect(existsSync(u.configFile)).toBe(false);
  });
});

describe("shed create", () => {
  test("--repo with a local checkout: the commit is in /workspace, owned by shed, with plain progress lines", async () => {
    const repo = makeGitRepo({ "hello.txt": "hello from the repo\n", "src/deep/file.txt": "deep\n" });
    const name = uniqueName("local-repo");
    const res = await cliOk(user, ["create", name, "--repo", repo]);
    expect(res.stdout).toContain(`shed ${name}: running`);
    // Not a terminal: one plain line per finished step (none when it starts), no spinner or cursor control.
    const stepLines = res.stderr.split("\n").filter((l) => /^[✓!✗-] /.test(l));
    const titles = stepLines.map((l) => l.replace(/^. (.*?) \([0-9.]+(ms|s|m)\).*$/, "$1"));
    // Each step once (its list is the server's: only the ones this test needs are named).
    expect(new Set(titles).size).toBe(titles.length);
    expect(titles).toEqual(expect.arrayContaining(["Storage setup", "Container/VM start", "Repo clone"]));
    for (const title of ["Storage setup", "Container/VM start", "Repo clone"]) {
      expect(res.stderr).toMatch(new RegExp(`^✓ ${title} \\([0-9.]+(ms|s|m)\\)`, "m"));
    }
    expect(res.stderr).not.toMatch(/^… /m);
    expect(res.stderr).not.toContain("\r");
    expect(res.stderr).not.toContain("\u001b[");

    const cat = await cliOk(user, ["exec", name, "--", "cat", "/workspace/hello.txt"]);
    expect(cat.stdout).toBe("hello from the repo\n");
    const log = await cliOk(user, ["exec", name, "--", "git", "-C", "/workspace", "log", "-1", "--format=%s"]);
    expect(log.stdout).toBe("initial commit\n");

    // Checked with the plain Docker API, as root, independently of Shed.
    const notShed = await dockerExec(name, ["find", "/workspace", "!", "-user", "shed"], "root");
    expect(notShed).toEqual({ code: 0, stdout: "", stderr: "" });
    const deep = await dockerExec(name, ["stat", "-c", "%U:%G", "/workspace/src/deep/file.txt"], "root");
    expect(deep.stdout.trim()).toBe("shed:shed");
  });

  test("--json create and --json list print one JSON document each on stdout", async () => {
    const name = uniqueName("json");
    const res = await cliOk(user, ["--json", "create", name]);
    const shed = json(res);
    expect(shed).toMatchObject({ name, status: "running", backend: "docker" });
    expect(res.stderr).toMatch(/^✓ Storage setup \(/m);
    expect(res.stderr).not.toMatch(/^… /m);

    const list = json(await cliOk(user, ["--json", "list"]));
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
    await cliOk(user, ["create", name]);
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
    await cliOk(user, ["create", name]);
    await cliOk(user, ["exec", name, "--", "sh", "-c", "echo kept > /workspace/keep.txt"]);

    const stopped = await cliOk(user, ["stop", name]);
    expect(stopped.stdout).toContain(`stopped ${name}`);
    // What happened, not what could have: it ended on SIGTERM, well inside stop_timeout.
    expect(stopped.stderr.match(/^.*Process stop.*$/gm)).toEqual([
      expect.stringMatching(/^✓ Process stop \([0-9.]+(ms|s)\): it exited on SIGTERM$/),
    ]);
    expect(await shedStatus(user, name)).toBe("stopped");
    expect((await docker.getContainer(`shed-${name}`).inspect()).State.Running).toBe(false);

    const again = await user.run(["--json", "stop", name]);
    expect(again.code, show(again)).toBe(1);
    expect(json(again).error.code).toBe("SHED_ALREADY_STOPPED");
    const againHuman = await user.run(["stop", name]);
    expect(againHuman.code).toBe(1);
    expect(againHuman.stderr).toContain("already stopped");
    expect(againHuman.stderr).toContain(`hint: \`shed start ${name}\` starts it`);

    const started = await cliOk(user, ["start", name]);
    expect(started.stdout).toContain(`started ${name}`);
    expect(await shedStatus(user, name)).toBe("running");
    expect((await docker.getContainer(`shed-${name}`).inspect()).State.Running).toBe(true);
    expect((await cliOk(user, ["exec", name, "--", "cat", "/workspace/keep.txt"])).stdout).toBe("kept\n");
    const startAgain = await user.run(["start", name]);
    expect(startAgain.code).toBe(1);
    expect(startAgain.stderr).toContain(`hint: connect with \`shed console ${name}\``);
  });

  test("a shed that does not end on SIGTERM is killed once stop_timeout has passed, and stop says so", async () => {
    const name = uniqueName("sigkill");
    await cliOk(user, ["create", name]);
    // docker-init passes SIGTERM on to the shed's main process; stopped from the host, that one cannot end.
    const init = (await docker.getContainer(`shed-${name}`).inspect()).State.Pid;
    const children = readFileSync(`/proc/${init}/task/${init}/children`, "utf8").trim().split(/\s+/);
    expect(children.length).toBeGreaterThan(0);
    for (const pid of children) process.kill(Number(pid), "SIGSTOP");

    const stopped = await cliOk(user, ["stop", name]);
    expect(stopped.stderr.match(/^.*Process stop.*$/gm)).toEqual([
      expect.stringMatching(
        /^✓ Process stop \([0-9.]+s\): it did not exit within stop_timeout \(3s\) of SIGTERM: killed with SIGKILL$/,
      ),
    ]);
    expect((await docker.getContainer(`shed-${name}`).inspect()).State.ExitCode).toBe(137);
  });
});

describe("shed delete", () => {
  test("without --force and without a terminal it refuses and leaves the shed", async () => {
    const name = uniqueName("del-refuse");
    await cliOk(user, ["create", name]);
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
    await cliOk(user, ["create", name]);
    const res = await cliOk(user, ["delete", name, "--force"]);
    expect(res.stdout).toContain(`deleted ${name}`);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
    expect(await shedStatus(user, name)).toBeUndefined();
  });

  test("--keep-volume keeps the workspace volume (and a new shed of that name gets it back)", async () => {
    const name = uniqueName("del-keep");
    await cliOk(user, ["create", name]);
    await cliOk(user, ["exec", name, "--", "sh", "-c", "echo survived > /workspace/kept.txt"]);
    const res = json(await cliOk(user, ["--json", "delete", name, "--force", "--keep-volume"]));
    expect(res).toEqual({ deleted: name, kept_volume: true });
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(true);

    await cliOk(user, ["create", name]);
    expect((await cliOk(user, ["exec", name, "--", "cat", "/workspace/kept.txt"])).stdout).toBe("survived\n");
  });
});
