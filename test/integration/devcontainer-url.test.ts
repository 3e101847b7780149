import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { HTTP_SERVER } from "../helpers/git-http-server.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";
import { guestFile, waitFor } from "../helpers/provision.js";
import { parseSse, type TestServer } from "../helpers/server.js";

/**
 * devcontainer.json of a repo URL (issue 13): the server fetches the
 * repository shallowly on its host before the shed exists and reads the file
 * there, the token reaching git through a credential store, never a command
 * line or the output. The repository is served over git's dumb HTTP protocol,
 * only with the token (HTTP Basic), by a helper container this file makes
 * (shed-base: perl-base, git), reached by its bridge IP from this host and
 * from the shed. Time budget: about 30 seconds.
 */
const TOKEN = `tok-${randomBytes(6).toString("hex")}`;
const BASIC = Buffer.from(`x-access-token:${TOKEN}`).toString("base64");

const DEVCONTAINER = `{
  // Read on the server's host before the shed exists: containerEnv is on the container from its start.
  "containerEnv": { "FROM_URL_FILE": "yes" },
  "remoteEnv": { "BASENAME": "\${localWorkspaceFolderBasename}" },
  "onCreateCommand": ["sh", "-c", "echo \\"onCreate saw FROM_URL_FILE=$FROM_URL_FILE\\" > /tmp/url-oncreate"],
}
`;

/** A bare repository with a devcontainer.json, servable over dumb HTTP; then the server. */
const SERVE_SETUP = `set -e
mkdir -p /srv/src/.devcontainer && cd /srv/src && git init -q -b main
printf '%s' "$2" > .devcontainer/devcontainer.json && git add -A
git -c user.email=t@example.com -c user.name=t commit -qm 'devcontainer'
git clone -q --bare /srv/src /srv/app.git
git -C /srv/app.git update-server-info
exec perl -e "$1" serve`;

let cli: CliUser;
let server: TestServer;
let helper: { id: string; ip: string; name: string };
useCliServer((s, user) => {
  server = s;
  cli = user;
});

beforeAll(async () => {
  const name = uniqueName("dcgit");
  const c = await docker.createContainer({
    Image: "shed-base:latest",
    name: `shed-${name}`,
    Entrypoint: [],
    Cmd: ["bash", "-c", SERVE_SETUP, "serve", HTTP_SERVER, DEVCONTAINER],
    Env: [`EXPECT_AUTH=${BASIC}`],
    Labels: { "dev.shed.test": RUN_PREFIX },
  });
  await c.start();
  const ip = (await c.inspect()).NetworkSettings.Networks.bridge?.IPAddress ?? "";
  if (!ip) throw new Error("the helper has no IP on the default bridge");
  await waitFor(
    "the git server to listen",
    async () => (await dockerExec(name, ["test", "-e", "/tmp/ready"])).code === 0,
  );
  helper = { id: c.id, ip, name };
});
afterAll(async () => {
  if (helper) await docker.getContainer(helper.id).remove({ force: true });
});

describe("a repo URL with a devcontainer.json", () => {
  it("is fetched on the server's host with the token from a credential store, and its file provisions the shed", async () => {
    const name = uniqueName("dcurl");
    const url = `http://${helper.ip}:8080/app.git`;
    const out = await cliOk(cli, ["create", name, "--repo", url, "--no-sync"], { SHED_REPO_TOKEN: TOKEN });
    expect(out.stderr).toContain("devcontainer.json: onCreateCommand");
    expect(await guestFile(name, "/tmp/url-oncreate")).toBe("onCreate saw FROM_URL_FILE=yes\n");
    expect((await cliOk(cli, ["exec", name, "--", "printenv", "BASENAME"])).stdout).toBe("app\n");
    expect(`${out.stdout}${out.stderr}`).not.toContain(TOKEN);
  });
});

describe("a repository on the server's own disk", () => {
  it("is never read for devcontainer.json: only network transports are fetched on the host", async () => {
    const marker = `/tmp/host-read-${randomBytes(4).toString("hex")}`;
    // Owned by this (the server's) user, as a repository of the host's own would be.
    const dir = tempDir("dchost");
    mkdirSync(join(dir, ".devcontainer"));
    writeFileSync(
      join(dir, ".devcontainer", "devcontainer.json"),
      JSON.stringify({ onCreateCommand: `touch ${marker}` }),
    );
    const git = (...args: string[]) => {
      const r = spawnSync("git", ["-C", dir, ...args], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
    };
    git("init", "-q", "-b", "main");
    git("add", "-A");
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "host");
    for (const repo of [dir, `file://${dir}`]) {
      const name = uniqueName("dchost");
      const res = await server.api(
        "POST",
        "/api/sheds",
        { name, repo, devcontainer_lookup: {} },
        { accept: "text/event-stream" },
      );
      const events = parseSse(res.body as string);
      const warnings = events.filter((e) => e.type === "warning").map((e) => String(e.message));
      expect(warnings.join("\n"), JSON.stringify(events)).toMatch(/could not fetch the repository on the server/);
      expect(JSON.stringify(events)).not.toContain("onCreateCommand");
      expect((await dockerExec(name, ["test", "-e", marker])).code).not.toBe(0);
    }
  });
});
