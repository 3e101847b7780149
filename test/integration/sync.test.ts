import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { type CliResult, type CliUser, cliOk, json, newCliUser, show } from "../helpers/cli.js";
import { addServerAs, useCliServer } from "../helpers/cli-server.js";
import { containerExists, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { guestFile } from "../helpers/provision.js";
import type { TestServer } from "../helpers/server.js";

/**
 * Auto-sync (seed: create step 9) and `shed sync`, black-box: the packaged CLI
 * (run `npm run build` first) with its own HOME and sync.yaml, a real
 * shed-server and the real Docker engine. What landed in the shed is checked
 * with the plain Docker API, independently of Shed.
 */

/** A secret in a synced file: it must never show in the CLI's output. */
const SECRET = "ghp_SYNC_TEST_SECRET_4f1d9c";

const SYNC_YAML = `# sync.yaml for the tests
features:
  git:
    description: Git identity
    paths:
      - source: ~/.gitconfig
        target: ~/.gitconfig
  gh:
    paths:
      - source: ~/.config/gh
        target: ~/.config/gh
        include: ["*.yml", "themes/**"]
  secret: { paths: [{ source: ~/.token, target: ~/.secrets/token }] }
  tools: { paths: [{ source: ~/bin-src, target: ~/bin }] }
  absent:
    paths: [{ source: ~/.does-not-exist, target: ~/.nope }]
    postSync: [{ run: touch ~/.absent-post-sync-ran }]
  big: { paths: [{ source: ~/big, target: /tmp/big }] }
  after:
    paths: []
    postSync:
      - run: wc -c < ~/.gitconfig > ~/.post-sync-saw && echo "post-sync says hello"
profiles:
  default: { features: [git, gh, secret, tools, absent, after] }
  minimal: { features: [git] }
`;

let srv: TestServer;
let user: CliUser;

/** Writes files under the user's HOME with explicit modes (a string is mode 0644). */
function writeHome(u: CliUser, files: Record<string, string | { content: string; mode: number }>): void {
  for (const [rel, spec] of Object.entries(files)) {
    const file = join(u.dir, rel);
    mkdirSync(dirname(file), { recursive: true });
    const content = typeof spec === "string" ? spec : spec.content;
    writeFileSync(file, content);
    chmodSync(file, typeof spec === "string" ? 0o644 : spec.mode);
  }
}

/** `stat` of a path in the shed, as root: "MODE OWNER:GROUP TYPE". */
async function statIn(name: string, path: string): Promise<string | undefined> {
  const r = await dockerExec(name, ["stat", "-c", "%a %U:%G %F", "--", path], "root");
  return r.code === 0 ? r.stdout.trim() : undefined;
}

function expectNoSecret(res: CliResult): void {
  expect(res.stdout).not.toContain(SECRET);
  expect(res.stderr).not.toContain(SECRET);
}

async function newUser(): Promise<CliUser> {
  const u = newCliUser();
  await addServerAs(u, srv, "dev");
  return u;
}

useCliServer((server, cli) => {
  srv = server;
  user = cli;
});

beforeAll(() => {
  writeHome(user, {
    ".gitconfig": "[user]\n\tname = Sync Test\n\temail = sync@shed.invalid\n",
    ".config/gh/hosts.yml": `github.com:\n  oauth_token: ${SECRET}\n`,
    ".config/gh/config.yml": "git_protocol: ssh\n",
    ".config/gh/notes.txt": "not included\n",
    ".config/gh/themes/dark/colors.json": "{}\n",
    ".config/gh/cache/big.bin": "excluded by the include patterns\n",
    ".token": { content: `${SECRET}\n`, mode: 0o600 },
    "bin-src/hello.sh": { content: "#!/bin/sh\necho hello\n", mode: 0o755 },
    "bin-src/deep/a/path/that/is/quite/long/to/need/more/than/one/hundred/characters/in/the/tar/header/x.txt": "deep\n",
  });
  chmodSync(join(user.dir, ".config/gh"), 0o700);
  symlinkSync("hello.sh", join(user.dir, "bin-src/hi"));
  writeFileSync(join(user.dir, "sync.yaml"), SYNC_YAML);
});

describe("auto-sync after create", () => {
  test("syncs the default profile: files, directories with include patterns, modes, postSync; warns on a missing source", async () => {
    const name = uniqueName("auto");
    const res = await cliOk(user, ["create", name]);
    expectNoSecret(res);
    // What was synced is printed (paths and counts, never contents); the missing source is a warning naming it.
    expect(res.stderr).toContain("Auto-sync (profile default)");
    expect(res.stderr).toMatch(/sent\s+~\/\.gitconfig -> ~\/\.gitconfig/);
    expect(res.stderr).toMatch(/warning \(sync\): ~\/\.does-not-exist: not found/);
    expect(res.stderr).toContain("post-sync says hello");

    expect(await guestFile(name, "/home/shed/.gitconfig")).toContain("name = Sync Test");
    expect(await guestFile(name, "/home/shed/.config/gh/hosts.yml")).toContain(SECRET);
    expect(await guestFile(name, "/home/shed/.config/gh/config.yml")).toBe("git_protocol: ssh\n");
    expect(await guestFile(name, "/home/shed/.config/gh/themes/dark/colors.json")).toBe("{}\n");
    // Not matched by the include patterns.
    expect(await guestFile(name, "/home/shed/.config/gh/notes.txt")).toBeUndefined();
    expect(await statIn(name, "/home/shed/.config/gh/cache")).toBeUndefined();

    // Modes kept, everything owned by shed.
    expect(await statIn(name, "/home/shed/.secrets/token")).toBe("600 shed:shed regular file");
    expect(await statIn(name, "/home/shed/.config/gh")).toBe("700 shed:shed directory");
    expect(await statIn(name, "/home/shed/.config/gh/hosts.yml")).toBe("644 shed:shed regular file");
    expect(await statIn(name, "/home/shed/bin/hello.sh")).toBe("755 shed:shed regular file");
    expect(await statIn(name, "/home/shed/.secrets")).toMatch(/^\d+ shed:shed directory$/);
    const link = await dockerExec(name, ["readlink", "/home/shed/bin/hi"]);
    expect(link.stdout.trim()).toBe("hello.sh");
    expect((await dockerExec(name, ["/home/shed/bin/hi"])).stdout).toBe("hello\n");
    const deep =
      "/home/shed/bin/deep/a/path/that/is/quite/long/to/need/more/than/one/hundred/characters/in/the/tar/header/x.txt";
    expect(await guestFile(name, deep)).toBe("deep\n");

    // postSync ran after the copy, as shed, in a login shell; a feature without any source skips it.
    const gitconfigSize = String(Buffer.byteLength("[user]\n\tname = Sync Test\n\temail = sync@shed.invalid\n"));
    expect((await guestFile(name, "/home/shed/.post-sync-saw"))?.trim()).toBe(gitconfigSize);
    expect(await statIn(name, "/home/shed/.post-sync-saw")).toMatch(/shed:shed/);
    expect(await guestFile(name, "/home/shed/.absent-post-sync-ran")).toBeUndefined();
  });

  test("--json create carries the sync report; --sync-profile picks another profile", async () => {
    const name = uniqueName("autojson");
    const res = await cliOk(user, ["--json", "create", name, "--sync-profile", "minimal"]);
    expectNoSecret(res);
    const out = json(res);
    expect(out).toMatchObject({ name, status: "running" });
    expect(out.sync).toMatchObject({ profile: "minimal", features: ["git"], files_sent: 1, ok: true });
    expect(out.sync.paths).toEqual([expect.objectContaining({ source: "~/.gitconfig", status: "synced" })]);
    expect(await guestFile(name, "/home/shed/.gitconfig")).toContain("Sync Test");
    expect(await guestFile(name, "/home/shed/.secrets/token")).toBeUndefined();
  });

  test("--no-sync skips it", async () => {
    const name = uniqueName("nosync");
    const res = await cliOk(user, ["create", name, "--no-sync"]);
    expect(res.stderr).not.toContain("Auto-sync");
    expect(await guestFile(name, "/home/shed/.gitconfig")).toBeUndefined();
  });

  test("an unknown --sync-profile is an error before anything is created", async () => {
    const name = uniqueName("badprof");
    const res = await user.run(["create", name, "--sync-profile", "nope"]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain('no sync profile named "nope"');
    expect(res.stderr).toContain("profiles: default, minimal");
    expect(res.stderr).not.toContain("Storage setup");
    expect(await containerExists(name)).toBe(false);
  });

  test("without a sync.yaml, create says nothing about sync", async () => {
    const u = await newUser();
    const name = uniqueName("nofile");
    const res = await cliOk(u, ["--json", "create", name]);
    expect(res.stderr).not.toMatch(/sync/i);
    expect(json(res).sync).toBeUndefined();
  });
});

describe("shed sync", () => {
  test("--dry-run changes nothing; a sync sends what differs; a repeat sends nothing", async () => {
    const name = uniqueName("ondemand");
    await cliOk(user, ["create", name, "--no-sync"]);

    const dry = await cliOk(user, ["sync", name, "--dry-run"]);
    expectNoSecret(dry);
    expect(dry.stdout).toMatch(/^dry run, nothing changed in/m);
    expect(dry.stdout).toContain("would copy  /home/shed/.config/gh/hosts.yml");
    expect(dry.stdout).toContain("would run   postSync after:");
    const dryJson = json(await cliOk(user, ["--json", "sync", name, "--dry-run"]));
    expect(dryJson).toMatchObject({ dry_run: true, files_sent: 0, bytes_sent: 0 });
    expect(dryJson.would_send.files).toBeGreaterThanOrEqual(6);
    expect(dryJson.paths.find((p: any) => p.source === "~/.gitconfig")).toMatchObject({
      status: "would_sync",
      changed: ["/home/shed/.gitconfig"],
    });
    expect(dryJson.paths.find((p: any) => p.source === "~/.config/gh").changed).toEqual([
      "/home/shed/.config/gh/",
      "/home/shed/.config/gh/config.yml",
      "/home/shed/.config/gh/hosts.yml",
      "/home/shed/.config/gh/themes/",
      "/home/shed/.config/gh/themes/dark/",
      "/home/shed/.config/gh/themes/dark/colors.json",
    ]);
    // Nothing changed: no file, and no postSync effect.
    expect(await guestFile(name, "/home/shed/.gitconfig")).toBeUndefined();
    expect(await statIn(name, "/home/shed/.config")).toBeUndefined();
    expect(await guestFile(name, "/home/shed/.post-sync-saw")).toBeUndefined();

    const first = json(await cliOk(user, ["--json", "sync", name]));
    expect(first).toMatchObject({ files_sent: dryJson.would_send.files, links_sent: dryJson.would_send.links });
    expect(first.bytes_sent).toBe(dryJson.would_send.bytes);
    expect(first.bytes_sent).toBeGreaterThan(0);
    expect(first.ok).toBe(true);
    expect(await guestFile(name, "/home/shed/.gitconfig")).toContain("Sync Test");

    // Unchanged files: nothing is sent the second time.
    const second = json(await cliOk(user, ["--json", "sync", name]));
    expect(second).toMatchObject({ files_sent: 0, dirs_sent: 0, links_sent: 0, bytes_sent: 0, ok: true });
    expect(second.up_to_date).toBeGreaterThanOrEqual(first.files_sent);
    for (const p of second.paths) expect(["up_to_date", "missing"]).toContain(p.status);
    const dryAgain = await cliOk(user, ["sync", name, "--dry-run"]);
    expect(dryAgain.stdout).not.toContain("would copy");
    expect(dryAgain.stdout).toContain("up to date  /home/shed/.gitconfig");

    // One changed file: only it is sent.
    writeHome(user, { ".gitconfig": "[user]\n\tname = Changed\n" });
    utimesSync(join(user.dir, ".gitconfig"), new Date(), new Date(Date.now() - 3_600_000));
    const third = json(await cliOk(user, ["--json", "sync", name]));
    expect(third).toMatchObject({ files_sent: 1, dirs_sent: 0 });
    expect(await guestFile(name, "/home/shed/.gitconfig")).toBe("[user]\n\tname = Changed\n");
    // A mode change alone is a change too.
    chmodSync(join(user.dir, ".token"), 0o640);
    const fourth = json(await cliOk(user, ["--json", "sync", name, "--feature", "secret"]));
    expect(fourth).toMatchObject({ features: ["secret"], files_sent: 1 });
    expect(await statIn(name, "/home/shed/.secrets/token")).toBe("640 shed:shed regular file");
    chmodSync(join(user.dir, ".token"), 0o600);
    writeHome(user, { ".gitconfig": "[user]\n\tname = Sync Test\n\temail = sync@shed.invalid\n" });
  });

  test("large files and long names arrive intact (streamed tar with pax headers)", async () => {
    const name = uniqueName("big");
    await cliOk(user, ["create", name, "--no-sync"]);
    const big = randomBytes(12 * 1024 * 1024 + 123);
    const longName = `${"n".repeat(140)}.dat`;
    mkdirSync(join(user.dir, "big"), { recursive: true });
    writeFileSync(join(user.dir, "big", "blob.bin"), big);
    writeFileSync(join(user.dir, "big", longName), "long name\n");
    symlinkSync(`${"t".repeat(120)}/target`, join(user.dir, "big", "long-link"));

    const res = json(await cliOk(user, ["--json", "sync", name, "--feature", "big"]));
    expect(res).toMatchObject({ features: ["big"], files_sent: 2, links_sent: 1, bytes_sent: big.length + 10 });
    const sum = await dockerExec(name, ["sha256sum", "/tmp/big/blob.bin"]);
    expect(sum.stdout.split(" ")[0]).toBe(createHash("sha256").update(big).digest("hex"));
    expect(await guestFile(name, `/tmp/big/${longName}`)).toBe("long name\n");
    expect((await dockerExec(name, ["readlink", "/tmp/big/long-link"])).stdout.trim()).toBe(
      `${"t".repeat(120)}/target`,
    );
    expect(json(await cliOk(user, ["--json", "sync", name, "--feature", "big"]))).toMatchObject({
      files_sent: 0,
      bytes_sent: 0,
    });
  });

  test("human output lists what was synced, never contents", async () => {
    const name = uniqueName("human");
    await cliOk(user, ["create", name, "--no-sync"]);
    const res = await cliOk(user, ["sync", name, "--profile", "default"]);
    expectNoSecret(res);
    expect(res.stdout).toMatch(new RegExp(`^synced profile default into ${name}: \\d+ files \\(.+\\) sent`, "m"));
    expect(res.stdout).toMatch(/sent\s+~\/\.token -> ~\/\.secrets\/token/);
    expect(res.stdout).toMatch(/missing\s+~\/\.does-not-exist -> ~\/\.nope/);
    expect(res.stdout).toMatch(/skipped\s+postSync absent: touch/);
    expect(res.stdout).toMatch(/ran\s+postSync after:/);
    expect(res.stderr).toContain("warning (sync): ~/.does-not-exist: not found");
  });

  test("a path that cannot be written is a warning naming it, and the command fails", async () => {
    const u = await newUser();
    writeHome(u, { ".blocked": "a file\n", ".fine": "fine\n" });
    writeFileSync(
      join(u.dir, "sync.yaml"),
      [
        "features:",
        "  f:",
        "    paths:",
        "      - { source: ~/.blocked, target: /etc/shed-sync-blocked }",
        "      - { source: ~/.fine, target: ~/.fine }",
        "    postSync:",
        "      - run: exit 3",
        "profiles:",
        "  default: { features: [f] }",
        "",
      ].join("\n"),
    );
    const name = uniqueName("blocked");
    const created = await cliOk(u, ["create", name]);
    // On create a failure is a warning: create succeeds.
    expect(created.stderr).toMatch(/warning \(sync\): ~\/\.blocked -> \/etc\/shed-sync-blocked: .*Permission denied/);
    expect(created.stderr).toMatch(/warning \(sync\): postSync of f failed \(exit 3\)/);
    expect(await guestFile(name, "/home/shed/.fine")).toBe("fine\n");

    const res = await u.run(["--json", "sync", name]);
    expect(res.code, show(res)).toBe(1);
    const report = json(res);
    expect(report.ok).toBe(false);
    expect(report.paths.map((p: any) => p.status)).toEqual(["failed", "up_to_date"]);
    expect(report.post_sync).toEqual([{ feature: "f", run: "exit 3", status: "failed", exit_code: 3 }]);
  });

  test("errors: an unknown shed, profile or feature; no sync.yaml", async () => {
    const missing = await user.run(["--json", "sync", uniqueName("missing")]);
    expect(missing.code, show(missing)).toBe(1);
    expect(json(missing).error.code).toBe("SHED_NOT_FOUND");

    const name = uniqueName("errs");
    await cliOk(user, ["create", name, "--no-sync"]);
    const prof = await user.run(["sync", name, "--profile", "nope"]);
    expect(prof.code, show(prof)).toBe(1);
    expect(prof.stderr).toContain('no sync profile named "nope"');
    const feat = await user.run(["sync", name, "--feature", "nope"]);
    expect(feat.code, show(feat)).toBe(1);
    expect(feat.stderr).toContain('no sync feature named "nope"');

    const u = await newUser();
    const none = await u.run(["sync", name]);
    expect(none.code, show(none)).toBe(1);
    expect(none.stderr).toContain(`there is no sync file ${join(u.dir, "sync.yaml")}`);
  });
});

describe("sync.yaml validation", () => {
  test("problems are reported as sync.yaml:LINE:COL: field: message", async () => {
    const u = await newUser();
    const file = join(u.dir, "sync.yaml");
    writeFileSync(
      file,
      [
        "features:",
        "  git:",
        "    paths:",
        "      - sourc: ~/.gitconfig",
        "        target: relative/path",
        "    postSync:",
        "      - run: echo hi",
        "        shell: zsh",
        "profiles:",
        "  default:",
        "    features: [git, nope]",
        "",
      ].join("\n"),
    );
    const name = uniqueName("yamlerr");
    const res = await u.run(["sync", name]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain(`${file}:4:9: features.git.paths.0.sourc: unknown field`);
    expect(res.stderr).toContain(`${file}:4:9: features.git.paths.0.source: `);
    expect(res.stderr).toContain(
      `${file}:5:17: features.git.paths.0.target: must be an absolute path or start with ~/`,
    );
    expect(res.stderr).toContain(`${file}:8:9: features.git.postSync.0.shell: unknown field`);

    // Once the features are valid, a profile naming an unknown one is reported where it is named.
    writeFileSync(
      file,
      [
        "features:",
        "  git:",
        "    paths: [{ source: ~/.gitconfig, target: ~/.gitconfig }]",
        "profiles:",
        "  default:",
        "    features: [git, nope]",
        "",
      ].join("\n"),
    );
    const res2 = await u.run(["--json", "sync", name]);
    expect(res2.code, show(res2)).toBe(1);
    expect(json(res2).error.code).toBe("INVALID_CONFIG");
    expect(res2.stderr).toContain(`${file}:6:21: profiles.default.features.1: unknown feature "nope" (features: git)`);

    // On create, an invalid sync.yaml is a warning (the shed is made), unless --sync-profile asked for it.
    const created = await cliOk(u, ["create", name]);
    expect(created.stderr).toContain(`${file}:6:21: profiles.default.features.1: unknown feature "nope"`);
    expect(created.stderr).toContain("warning (sync)");
    const other = uniqueName("yamlerr2");
    const refused = await u.run(["create", other, "--sync-profile", "default"]);
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr).toContain(`${file}:6:21`);
    expect(await containerExists(other)).toBe(false);

    writeFileSync(file, "features:\n  git: [oops\n");
    const syntax = await u.run(["sync", name]);
    expect(syntax.code, show(syntax)).toBe(1);
    expect(syntax.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: YAML syntax`));
  });
});
