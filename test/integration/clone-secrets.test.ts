import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { gitCredentialsDir, gitCredentialsFile } from "../../src/guest/git-credentials.js";
import { SHED_USER } from "../../src/guest/guest-user.js";
import { type CliUser, cliOk, json, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { HTTP_SERVER } from "../helpers/git-http-server.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";
import { guestFile, op, outputOf, resultOf, stepEnd, waitFor, warningsOf } from "../helpers/provision.js";
import type { TestServer } from "../helpers/server.js";

const GIT_CREDENTIALS_DIR = gitCredentialsDir(SHED_USER);
const GIT_CREDENTIALS_FILE = gitCredentialsFile(SHED_USER);

/**
 * A repository token never reaches a command line, in the shed or on the
 * host. Git HTTP servers run in helper containers this file creates
 * (shed-base: perl-base, git), reached from the shed by their bridge IP. One
 * answers the first request with 401 and then holds the authenticated one
 * open, so the shed's `git clone` and `git-remote-http` are caught alive
 * while every /proc/N/cmdline is read; the other serves a real repository
 * over git's dumb HTTP protocol, and only with the token (HTTP Basic).
 */
const USER = "ci bot";
const TOKEN = `tok/${randomBytes(6).toString("hex")}@S3cret`;
const BASIC = Buffer.from(`${USER}:${TOKEN}`).toString("base64");
const USERINFO = `${encodeURIComponent(USER)}:${encodeURIComponent(TOKEN)}`;
/** Every form the token could leak in: raw, percent-encoded (with escapes in either case, as git writes them) and inside the Basic header. */
const FORMS = [
  TOKEN,
  encodeURIComponent(TOKEN),
  encodeURIComponent(TOKEN).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
  BASIC,
];

function expectNoToken(text: string, where: string): void {
  for (const form of FORMS) expect(text.includes(form), `${where} contains the token (${form})`).toBe(false);
}

/** A bare repository with one commit, made servable over dumb HTTP; then the server. */
const SERVE_SETUP = `set -e
mkdir -p /srv/src && cd /srv/src && git init -q -b main
echo hello > hello.txt && git add hello.txt
git -c user.email=t@example.com -c user.name=t commit -qm 'first commit'
git clone -q --bare /srv/src /srv/repo.git
git -C /srv/repo.git update-server-info
exec perl -e "$1" serve`;

/** A second commit in the served repository (for git pull in the shed). */
const ADD_COMMIT = `set -e
cd /srv/src && echo more > more.txt && git add more.txt
git -c user.email=t@example.com -c user.name=t commit -qm 'second commit'
git push -q /srv/repo.git main
git -C /srv/repo.git update-server-info`;

interface Helper {
  /** For dockerExec (which adds the shed- prefix). */
  name: string;
  id: string;
  ip: string;
}

async function startHelper(label: string, cmd: string[]): Promise<Helper> {
  const name = uniqueName(label);
  const c = await docker.createContainer({
    Image: "shed-base:latest",
    name: `shed-${name}`,
    Entrypoint: [],
    Cmd: cmd,
    // The server compares the header itself; the secret is in the helper's environment, not its argv.
    Env: [`EXPECT_AUTH=${BASIC}`],
    Labels: { "dev.shed.test": RUN_PREFIX },
  });
  await c.start();
  const ip = (await c.inspect()).NetworkSettings.Networks.bridge?.IPAddress ?? "";
  if (!ip) throw new Error(`helper ${name} has no IP on the default bridge`);
  await waitFor(`${name} to listen`, async () => (await dockerExec(name, ["test", "-e", "/tmp/ready"])).code === 0);
  return { name, id: c.id, ip };
}

/** Every process's argv on this host (the shed's processes are among them), NULs as spaces. */
function hostCmdlines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      lines.push(
        readFileSync(join("/proc", pid, "cmdline"))
          .toString("latin1")
          .replaceAll("\0", " "),
      );
    } catch {
      // The process exited while the list was read.
    }
  }
  return lines;
}

/** Every process's argv and environment in the shed, read as root, one process a line. */
async function shedProcesses(name: string): Promise<string[]> {
  const script = `for p in /proc/[0-9]*; do
  { tr '\\0' ' ' < "$p/cmdline"; printf ' | '; tr '\\0' ' ' < "$p/environ"; echo; } 2>/dev/null
done`;
  const r = await dockerExec(name, ["bash", "-c", script], "root");
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split("\n");
}

let server: TestServer;
let user: CliUser;
let hang: Helper;
let serve: Helper;

useCliServer((s, u) => {
  server = s;
  user = u;
});

beforeAll(async () => {
  [hang, serve] = await Promise.all([
    startHelper("git-hang", ["perl", "-e", HTTP_SERVER, "hang"]),
    startHelper("git-http", ["bash", "-c", SERVE_SETUP, "git-http", HTTP_SERVER]),
  ]);
});

describe("a token in the repo URL is on no command line, while git is talking to the server", () => {
  it("git clone and git-remote-http run with the plain URL; the token reaches the server from the store", async () => {
    const name = uniqueName("hang");
    const where = `${hang.ip}:8080/repo.git`;
    const created = op(server, "POST", "/api/sheds", { name, repo: `http://${USERINFO}@${hang.ip}:8080/repo.git` });
    // Settled later; a failed check must not leave it unhandled.
    created.catch(() => {});
    try {
      // The server writes this only for a request with the right Basic credentials, which it then holds open.
      await waitFor(
        "the shed's git to send the token and wait",
        async () => (await dockerExec(hang.name, ["test", "-e", "/tmp/authed"])).code === 0,
        60_000,
      );

      const inShed = await shedProcesses(name);
      // Caught alive: the scan saw the processes that would carry a URL.
      expect(inShed.some((l) => l.startsWith("git clone ") && l.includes(where))).toBe(true);
      expect(inShed.some((l) => l.includes("git-remote-http") && l.includes(where))).toBe(true);
      expectNoToken(inShed.join("\n"), "a process's argv or environment in the shed");

      const onHost = hostCmdlines();
      expect(onHost.some((l) => l.includes("git-remote-http") && l.includes(where))).toBe(true);
      expectNoToken(onHost.join("\n"), "a process's argv on the host");
    } finally {
      // Killing the server ends the connection: the clone fails, which is a warning.
      await docker.getContainer(hang.id).kill();
    }
    const events = await created;
    expect(resultOf(events).status).toBe("running");
    expect(stepEnd(events, "clone").outcome).toBe("warning");
    expect(warningsOf(events, "clone").join("\n")).toContain(`git clone http://***@${hang.ip}:8080/repo.git failed`);
    expectNoToken(JSON.stringify(events), "the create's events");
    // No checkout uses the token, so it was taken out of the store again.
    expectNoToken((await guestFile(name, GIT_CREDENTIALS_FILE)) ?? "", "the credential store after a failed clone");
  });
});

describe("a real clone with the token", () => {
  it("clones with the URL's credentials; config, origin and events hold no token; git pull works as shed", async () => {
    const name = uniqueName("cloned");
    const plain = `http://${serve.ip}:8080/repo.git`;
    const events = await op(server, "POST", "/api/sheds", {
      name,
      repo: `http://${USERINFO}@${serve.ip}:8080/repo.git`,
    });
    expect(resultOf(events).status).toBe("running");
    expect(stepEnd(events, "clone").outcome, JSON.stringify(events)).toBe("succeeded");
    expect(outputOf(events, "clone")).toContain("Cloning into");
    expectNoToken(JSON.stringify(events), "the create's events");

    const config = await guestFile(name, "/workspace/.git/config");
    expect(config).toContain(`url = ${plain}`);
    expectNoToken(config ?? "", "/workspace/.git/config");
    expect((await dockerExec(name, ["git", "-C", "/workspace", "remote", "get-url", "origin"])).stdout.trim()).toBe(
      plain,
    );
    const helpers = await dockerExec(name, ["git", "-C", "/workspace", "config", "--get-all", "credential.helper"]);
    expect(helpers.stdout).toBe(`\nstore --file ${GIT_CREDENTIALS_FILE}\n`);

    const modes = await dockerExec(name, ["stat", "-c", "%a %U:%G", GIT_CREDENTIALS_DIR, GIT_CREDENTIALS_FILE], "root");
    expect(modes.stdout).toBe("700 shed:shed\n600 shed:shed\n");
    // The store does hold it (that is how git gets it), percent-encoded the way git writes it.
    expect(await guestFile(name, GIT_CREDENTIALS_FILE)).toContain(`@${serve.ip}%3a8080/repo.git`);

    const added = await dockerExec(serve.name, ["bash", "-c", ADD_COMMIT], "root");
    expect(added.code, added.stderr).toBe(0);
    // No terminal, no askpass: a prompt would be a failure.
    const pull = await dockerExec(name, [
      "env",
      "GIT_TERMINAL_PROMPT=0",
      "GIT_ASKPASS=/bin/false",
      "git",
      "-C",
      "/workspace",
      "pull",
      "--ff-only",
    ]);
    expect(pull.code, pull.stderr).toBe(0);
    const log = await dockerExec(name, ["git", "-C", "/workspace", "log", "--format=%s"]);
    expect(log.stdout).toBe("second commit\nfirst commit\n");
  });

  it("the CLI takes the token from SHED_REPO_TOKEN and SHED_REPO_USERNAME, for a URL and for a local checkout's origin", async () => {
    const env = { SHED_REPO_TOKEN: TOKEN, SHED_REPO_USERNAME: USER };
    const plain = `http://${serve.ip}:8080/repo.git`;
    const name = uniqueName("envtok");
    const res = await cliOk(user, ["--json", "create", name, "--repo", plain, "--no-sync"], env);
    expect(json(res).status).toBe("running");
    expectNoToken(res.stdout + res.stderr, "the CLI's output");
    const fetch = await dockerExec(name, ["env", "GIT_TERMINAL_PROMPT=0", "git", "-C", "/workspace", "fetch"]);
    expect(fetch.code, fetch.stderr).toBe(0);
    expect((await dockerExec(name, ["git", "-C", "/workspace", "log", "--format=%s"])).stdout).toContain(
      "first commit\n",
    );

    // A local checkout whose origin carries the token: the shed's origin is the plain URL, and fetch still works.
    const checkout = tempDir("origin-tok");
    const git = (...args: string[]) => {
      const r = spawnSync("git", ["-C", checkout, ...args], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`git ${args[0]}: ${r.stderr}`);
    };
    git("init", "-q", "-b", "main");
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "local");
    git("remote", "add", "origin", `http://${USERINFO}@${serve.ip}:8080/repo.git`);
    const local = uniqueName("origintok");
    const made = await cliOk(user, ["--json", "create", local, "--repo", checkout, "--no-sync"]);
    expectNoToken(made.stdout + made.stderr, "the CLI's output");
    expect((await dockerExec(local, ["git", "-C", "/workspace", "remote", "get-url", "origin"])).stdout.trim()).toBe(
      plain,
    );
    expectNoToken((await guestFile(local, "/workspace/.git/config")) ?? "", "/workspace/.git/config");
    const fetched = await dockerExec(local, ["env", "GIT_TERMINAL_PROMPT=0", "git", "-C", "/workspace", "fetch"]);
    expect(fetched.code, fetched.stderr).toBe(0);
    const remoteLog = await dockerExec(local, ["git", "-C", "/workspace", "log", "--format=%s", "origin/main"]);
    expect(remoteLog.stdout).toContain("first commit\n");
  });
});

describe("the API refuses credentials it cannot use, without echoing them", () => {
  it("for an ssh URL, together with a token in the URL, and with an unknown field", async () => {
    const credentials = { username: USER, password: TOKEN };
    const bodies = [
      { name: uniqueName("ssh-tok"), repo: `ssh://git@${serve.ip}/repo.git`, repo_credentials: credentials },
      {
        name: uniqueName("both-tok"),
        repo: `http://${USERINFO}@${serve.ip}:8080/repo.git`,
        repo_credentials: credentials,
      },
      {
        name: uniqueName("odd-tok"),
        repo: `http://${serve.ip}:8080/repo.git`,
        repo_credentials: { ...credentials, token: TOKEN },
      },
    ];
    for (const body of bodies) {
      const res = await server.api("POST", "/api/sheds", body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.code).toBe("INVALID_REQUEST");
      expectNoToken(JSON.stringify(res.body), "the error");
    }
  });
});
