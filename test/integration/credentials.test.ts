import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { KNOWN_HOSTS } from "../../src/guest/known-hosts.js";
import { tempDir } from "../helpers/cli.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import {
  createLocal,
  getShed,
  guestFile,
  op,
  outputOf,
  resultOf,
  stepEnd,
  warningsOf,
  workspace,
} from "../helpers/provision.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Credentials on Docker against the real engine: root-owned sources (this
 * server runs as root) are staged read-only and copied as user shed at create
 * and on every start; uid-1000 sources are live bind mounts; known_hosts is
 * seeded with the published keys of github.com, gitlab.com and bitbucket.org.
 */
const SECRET = "PRIVATE-KEY-sup3r-s3cret-material";
const BAK_SECRET = "backup-s3cret-never-copied";
const TOKEN = "token-s3cret-value";

let server: TestServer;
let creds: string;

beforeAll(async () => {
  creds = tempDir("creds");
  const ssh = join(creds, "ssh");
  mkdirSync(ssh, { mode: 0o700 });
  chmodSync(ssh, 0o700);
  writeFileSync(join(ssh, "id_ed25519"), `${SECRET}\n`, { mode: 0o600 });
  writeFileSync(join(ssh, "id_ed25519.pub"), "ssh-ed25519 AAAAfake user@host\n", { mode: 0o644 });
  writeFileSync(join(ssh, "id_ed25519.bak"), `${BAK_SECRET}\n`, { mode: 0o600 });
  mkdirSync(join(ssh, "old"));
  writeFileSync(join(ssh, "old", "key.bak"), `${BAK_SECRET}\n`, { mode: 0o600 });
  writeFileSync(join(ssh, "known_hosts"), "example.org ssh-ed25519 AAAAexampleonly\n", { mode: 0o644 });
  writeFileSync(join(creds, "token"), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(creds, "live"), "live-1\n", { mode: 0o600 });
  spawnSync("chown", ["1000:1000", join(creds, "live")]);
  mkdirSync(join(creds, "own"));
  writeFileSync(join(creds, "own", "keep.txt"), "kept\n");
  writeFileSync(join(creds, "own", "drop.bak"), `${BAK_SECRET}\n`);
  spawnSync("chown", ["-R", "1000:1000", join(creds, "own")]);
  server = await startTestServer({
    credentials: {
      ssh: { source: ssh, target: "/home/shed/.ssh", exclude: ["*.bak"] },
      token: { source: join(creds, "token"), target: "/home/shed/.config/tool/token", readonly: true },
      live: { source: join(creds, "live"), target: "/home/shed/.live" },
      own: { source: join(creds, "own"), target: "/home/shed/.own", exclude: ["*.bak"] },
      gone: { source: join(creds, "does-not-exist"), target: "/home/shed/.gone" },
    },
  });
});

async function statIn(name: string, path: string): Promise<string> {
  const r = await dockerExec(name, ["stat", "-c", "%a %U:%G", path], "root");
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe("credentials for user shed (root-owned sources are copied, uid-1000 sources are mounted)", () => {
  const name = uniqueName("creds");
  let events: any[];

  beforeAll(async () => {
    const ws = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh":
        "#!/bin/bash\ntest -r ~/.ssh/id_ed25519 && echo key-readable\n" +
        "test -e ~/.ssh/id_ed25519.bak || echo bak-absent\ngrep -c github.com ~/.ssh/known_hosts\n",
    });
    ({ events } = await createLocal(server, name, ws));
    expect(resultOf(events).status).toBe("running");
  });

  it("sets credentials up before the clone and the hooks; the install hook reads the key", () => {
    const steps = events.filter((e) => e.type === "step").map((e) => e.step);
    expect(steps.indexOf("credentials")).toBeLessThan(steps.indexOf("clone"));
    expect(steps.indexOf("credentials")).toBeLessThan(steps.indexOf("install_hook"));
    const out = outputOf(events, "install_hook");
    expect(out).toContain("key-readable");
    expect(out).toContain("bak-absent");
    expect(out).toMatch(/^3$/m);
  });

  it("a root-owned 0600 key is 0600, owned by shed and readable by shed; the directory keeps 0700", async () => {
    expect(await statIn(name, "/home/shed/.ssh/id_ed25519")).toBe("600 shed:shed");
    expect(await statIn(name, "/home/shed/.ssh/id_ed25519.pub")).toBe("644 shed:shed");
    expect(await statIn(name, "/home/shed/.ssh")).toBe("700 shed:shed");
    const cat = await dockerExec(name, ["cat", "/home/shed/.ssh/id_ed25519"]);
    expect(cat.stdout).toBe(`${SECRET}\n`);
    const info = await docker.getContainer(`shed-${name}`).inspect();
    const staged = info.Mounts.find((m) => m.Destination === "/run/shed-credentials/ssh");
    expect(staged?.RW).toBe(false);
    expect(info.Mounts.find((m) => m.Destination === "/home/shed/.ssh")).toBeUndefined();
  });

  it("exclude patterns leave files out, at any depth", async () => {
    expect(await guestFile(name, "/home/shed/.ssh/id_ed25519.bak")).toBeUndefined();
    expect(await guestFile(name, "/home/shed/.ssh/old/key.bak")).toBeUndefined();
    // A mount cannot leave files out: a uid-1000 source with exclude is copied too.
    expect(await guestFile(name, "/home/shed/.own/keep.txt")).toBe("kept\n");
    expect(await guestFile(name, "/home/shed/.own/drop.bak")).toBeUndefined();
    const info = await docker.getContainer(`shed-${name}`).inspect();
    expect(info.Mounts.find((m) => m.Destination === "/home/shed/.own")).toBeUndefined();
  });

  it("readonly copies lose their w bits; their new parents belong to shed", async () => {
    expect(await statIn(name, "/home/shed/.config/tool/token")).toBe("400 shed:shed");
    expect((await dockerExec(name, ["cat", "/home/shed/.config/tool/token"])).stdout).toBe(`${TOKEN}\n`);
    const write = await dockerExec(name, ["sh", "-c", "echo x >> /home/shed/.config/tool/token"]);
    expect(write.code).not.toBe(0);
    expect(await statIn(name, "/home/shed/.config")).toMatch(/ shed:shed$/);
    expect((await dockerExec(name, ["mkdir", "/home/shed/.config/other"])).code).toBe(0);
  });

  it("a source owned by uid 1000 is a live bind mount", async () => {
    expect(await statIn(name, "/home/shed/.live")).toBe("600 shed:shed");
    writeFileSync(join(creds, "live"), "live-2\n");
    expect((await dockerExec(name, ["cat", "/home/shed/.live"])).stdout).toBe("live-2\n");
  });

  it("known_hosts merges the credential's own file with the published host keys", async () => {
    const kh = (await guestFile(name, "/home/shed/.ssh/known_hosts")) ?? "";
    const lines = kh.split("\n").filter((l) => l !== "");
    expect(lines[0]).toBe("example.org ssh-ed25519 AAAAexampleonly");
    expect(lines.slice(1)).toEqual([...KNOWN_HOSTS]);
    expect(await statIn(name, "/home/shed/.ssh/known_hosts")).toBe("644 shed:shed");
  });

  it("a missing source is a warning naming it; no secret shows in events, the shed or its records", async () => {
    const warnings = warningsOf(events, "credentials");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(join(creds, "does-not-exist"));
    expect(stepEnd(events, "credentials").outcome).toBe("warning");
    const everything = [
      JSON.stringify(events),
      JSON.stringify(await getShed(server, name)),
      JSON.stringify(await docker.getContainer(`shed-${name}`).inspect()),
      ...readdirSync(join(server.dir, "data", "sheds")).map((f) =>
        readFileSync(join(server.dir, "data", "sheds", f), "utf8"),
      ),
    ].join("\n");
    for (const secret of [SECRET, BAK_SECRET, TOKEN]) expect(everything).not.toContain(secret);
  });

  it("copies are refreshed on start: host edits show, modes hold, known_hosts is seeded again", async () => {
    writeFileSync(join(creds, "ssh", "id_ed25519"), `${SECRET}-rotated\n`);
    writeFileSync(join(creds, "token"), `${TOKEN}-rotated\n`);
    await op(server, "POST", `/api/sheds/${name}/stop`);
    const events = await op(server, "POST", `/api/sheds/${name}/start`);
    expect(resultOf(events).status).toBe("running");
    expect(stepEnd(events, "credentials")).toMatchObject({ outcome: "succeeded" });
    expect(stepEnd(events, "credentials").message).toContain("3 copied credentials refreshed");
    expect((await dockerExec(name, ["cat", "/home/shed/.ssh/id_ed25519"])).stdout).toBe(`${SECRET}-rotated\n`);
    expect(await statIn(name, "/home/shed/.ssh/id_ed25519")).toBe("600 shed:shed");
    expect((await dockerExec(name, ["cat", "/home/shed/.config/tool/token"])).stdout).toBe(`${TOKEN}-rotated\n`);
    expect(await statIn(name, "/home/shed/.config/tool/token")).toBe("400 shed:shed");
    const kh = (await guestFile(name, "/home/shed/.ssh/known_hosts")) ?? "";
    expect(kh.split("\n").filter((l) => l !== "")).toHaveLength(KNOWN_HOSTS.length + 1);
    expect(JSON.stringify(events)).not.toContain("s3cret");
  });
});

describe("known_hosts without credentials", () => {
  it("is made 0644 in a 0700 ~/.ssh, owned by shed, with the published keys", async () => {
    const bare = await startTestServer();
    try {
      const name = uniqueName("kh");
      const events = await op(bare, "POST", "/api/sheds", { name });
      expect(resultOf(events).status).toBe("running");
      expect(stepEnd(events, "credentials").outcome).toBe("succeeded");
      expect(await statIn(name, "/home/shed/.ssh")).toBe("700 shed:shed");
      expect(await statIn(name, "/home/shed/.ssh/known_hosts")).toBe("644 shed:shed");
      const kh = (await guestFile(name, "/home/shed/.ssh/known_hosts")) ?? "";
      expect(kh).toBe(`${KNOWN_HOSTS.join("\n")}\n`);
      for (const host of ["github.com", "gitlab.com", "bitbucket.org"]) {
        const found = await dockerExec(name, ["ssh-keygen", "-F", host, "-f", "/home/shed/.ssh/known_hosts"]);
        expect(found.code, `${host}: ${found.stderr}`).toBe(0);
      }
    } finally {
      await bare.close();
    }
  });
});
