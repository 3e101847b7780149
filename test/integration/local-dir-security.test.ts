import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, removeAtEnd, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { containerExists, docker, dockerExec, volumeExists } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { op, resultOf, stepEnd, warningsOf } from "../helpers/provision.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * --local-dir against the real server API, CLI and Docker engine: refused
 * directories make nothing; an allowed one is mounted by its real path, and
 * user shed takes its owner's uid and gid, so what the shed writes belongs to
 * that owner on the host.
 */

function chown(owner: string, ...paths: string[]): void {
  const r = spawnSync("chown", ["-h", owner, ...paths]);
  if (r.status !== 0) throw new Error(`chown ${owner} failed: ${r.stderr}`);
}

/** "uid:gid" of a host path. */
function ownerOf(path: string): string {
  const st = statSync(path);
  return `${st.uid}:${st.gid}`;
}

async function asShed(name: string, script: string): Promise<string> {
  const r = await dockerExec(name, ["bash", "-c", script]);
  expect(r.code, `${script}: ${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

/** A directory owned by uid 1234, and credentials: one live mount (source owned by 1234), one copy (root's). */
const creds = tempDir("creds");
const liveCred = join(creds, "live");
mkdirSync(liveCred);
// Owned by uid 1000 on the host, inside a mount: re-owning the shed's home must not reach it.
writeFileSync(join(liveCred, "inner"), "inner\n");
chown("1000:1000", join(liveCred, "inner"));
chown("1234:1234", liveCred);
writeFileSync(join(creds, "token"), "token\n", { mode: 0o600 });

let server: TestServer;
let user: CliUser;
useCliServer(
  (s, u) => {
    server = s;
    user = u;
  },
  {
    credentials: {
      live: { source: liveCred, target: "/home/shed/.live" },
      // The same directory inside the hook-log volume: on the host's disk like the source, so `find -xdev` would
      // walk into it; only the mount table keeps the re-owning out.
      samedev: { source: liveCred, target: "/var/log/shed/samedev" },
      token: { source: join(creds, "token"), target: "/home/shed/.config/token" },
    },
  },
);

/** A home of its own under /home (a "/home/NAME" directory, refused itself; its subdirectories are fine). */
let home: string;
beforeAll(() => {
  home = removeAtEnd(mkdtempSync("/home/shed-test-"));
});

async function expectRefused(local_dir: string, rule: string, shown = local_dir): Promise<void> {
  const name = uniqueName("refused");
  const res = await server.api("POST", "/api/sheds", { name, local_dir });
  expect(res.status, JSON.stringify(res.body)).toBe(403);
  expect(res.body.error.code).toBe("LOCAL_DIR_REFUSED");
  expect(res.body.error.details.rule).toBe(rule);
  expect(res.body.error.message).toContain(`--local-dir ${shown}`);
  expect(res.body.error.hint).toBeTruthy();
  expect(await containerExists(name)).toBe(false);
  expect(await volumeExists(name)).toBe(false);
  expect(existsSync(join(server.dir, "data", "sheds", `${name}.json`))).toBe(false);
}

describe("refused local dirs: a clear error, and nothing is created", () => {
  it("the root and system directories, and everything under them", async () => {
    await expectRefused("/", "root");
    for (const dir of ["/etc", "/etc/ssh", "/usr", "/usr/lib", "/bin", "/lib", "/boot", "/dev", "/proc", "/sys"]) {
      if (existsSync(dir)) await expectRefused(dir, "system_dir");
    }
    for (const dir of ["/run", "/var", "/var/tmp", "/var/lib/docker"]) await expectRefused(dir, "system_dir");
  });

  it("home directories themselves, and directories that contain them", async () => {
    await expectRefused("/root", "home_dir");
    await expectRefused(home, "home_dir");
    await expectRefused("/home", "home_dir");
  });

  it("the server's data_dir, what it contains and what contains it", async () => {
    const data = join(server.dir, "data");
    await expectRefused(data, "server_data_dir");
    await expectRefused(join(data, "sheds"), "server_data_dir");
    await expectRefused(server.dir, "server_data_dir");
  });

  it("a directory that contains the Docker socket named by DOCKER_HOST", async () => {
    const dir = tempDir("sock");
    symlinkSync("/run/docker.sock", join(dir, "docker.sock"));
    const before = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = `unix://${join(dir, "docker.sock")}`;
    try {
      await expectRefused(dir, "docker_socket");
    } finally {
      if (before === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = before;
    }
  });

  it("a symlink is judged by what it resolves to", async () => {
    const link = join(tempDir("link"), "etc");
    symlinkSync("/etc", link);
    await expectRefused(link, "system_dir", `${link} (real path /etc)`);
    const res = await server.api("POST", "/api/sheds", { name: uniqueName("refused"), local_dir: link });
    expect(res.body.error.details.real_path).toBe("/etc");
  });

  it("through the CLI: shed create --local-dir /etc", async () => {
    const name = uniqueName("cli-etc");
    const human = await user.run(["create", name, "--local-dir", "/etc", "--no-sync"]);
    expect(human.code, show(human)).toBe(1);
    expect(human.stderr).toContain("--local-dir /etc is refused");
    expect(human.stderr).toContain("system directory");
    const asJson = await user.run(["--json", "create", name, "--local-dir", "/etc", "--no-sync"]);
    expect(asJson.code, show(asJson)).toBe(1);
    expect(json(asJson).error.code).toBe("LOCAL_DIR_REFUSED");
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  });
});

describe("local_dir_roots confines local dirs", () => {
  let confined: TestServer;
  let roots: string;

  beforeAll(async () => {
    roots = tempDir("roots");
    confined = await startTestServer({ local_dir_roots: [roots] });
  });

  it("refuses a directory outside the roots, directly or through a symlink inside them", async () => {
    const outside = tempDir("outside");
    symlinkSync(outside, join(roots, "escape"));
    for (const local_dir of [outside, join(roots, "escape")]) {
      const name = uniqueName("outside");
      const res = await confined.api("POST", "/api/sheds", { name, local_dir });
      expect(res.status, JSON.stringify(res.body)).toBe(403);
      expect(res.body.error).toMatchObject({ code: "LOCAL_DIR_REFUSED", details: { rule: "outside_local_dir_roots" } });
      expect(res.body.error.message).toContain(roots);
      expect(await containerExists(name)).toBe(false);
    }
  });

  it("accepts a directory inside them", async () => {
    const inside = join(roots, "proj");
    mkdirSync(inside);
    chown("1000:1000", inside);
    const name = uniqueName("inside");
    const shed = resultOf(await op(confined, "POST", "/api/sheds", { name, local_dir: inside }));
    expect(shed).toMatchObject({ status: "running", local_dir: inside });
  });
});

describe("a directory owned by uid 1234 (reached through a symlink)", () => {
  const name = uniqueName("uid1234");
  let project: string;
  let events: any[];

  beforeAll(async () => {
    project = join(home, "proj");
    mkdirSync(join(project, ".shed"), { recursive: true });
    writeFileSync(join(project, ".shed", "provision.yaml"), "hooks:\n  install: install.sh\n");
    writeFileSync(join(project, "install.sh"), "#!/bin/bash\nid -u > /workspace/install-uid\ntouch ~/from-hook\n", {
      mode: 0o755,
    });
    spawnSync("chown", ["-R", "1234:1234", project]);
    const link = join(tempDir("to-proj"), "proj");
    symlinkSync(project, link);
    events = await op(server, "POST", "/api/sheds", { name, local_dir: link });
  });

  it("mounts the real path, not the symlink", async () => {
    expect(resultOf(events)).toMatchObject({ status: "running", local_dir: project });
    const info = await docker.getContainer(`shed-${name}`).inspect();
    expect(info.Mounts.find((m) => m.Destination === "/workspace")?.Source).toBe(project);
  });

  it("user shed has uid and gid 1234, and says so; sudo still works", async () => {
    expect(stepEnd(events, "local_dir")).toMatchObject({ outcome: "succeeded" });
    expect(stepEnd(events, "local_dir").message).toContain("uid 1234 and gid 1234");
    expect(await asShed(name, "id -u; id -g")).toBe("1234\n1234");
    expect(await asShed(name, "sudo -n id -u")).toBe("0");
  });

  it("what the shed writes belongs to 1234:1234 on the host (shed exec, and the install hook)", async () => {
    await cliOk(user, ["exec", name, "--", "touch", "/workspace/from-cli"]);
    expect(ownerOf(join(project, "from-cli"))).toBe("1234:1234");
    expect(readFileSync(join(project, "install-uid"), "utf8")).toBe("1234\n");
    expect(ownerOf(join(project, "install-uid"))).toBe("1234:1234");
  });

  it("its home and Shed's folders follow; a live mount under the home keeps its host owner", async () => {
    await asShed(name, "touch ~/y && test -e ~/from-hook");
    const owners = await asShed(
      name,
      "stat -c '%n %u:%g' ~ ~/.bashrc ~/.ssh/known_hosts ~/.config/token /var/log/shed /var/lib/shed/install.done",
    );
    for (const line of owners.split("\n")) expect(line).toMatch(/ 1234:1234$/);
    expect(await asShed(name, "stat -c '%u:%g' ~/.live ~/.live/inner")).toBe("1234:1234\n1000:1000");
    expect(await asShed(name, "stat -c '%u:%g' /var/log/shed/samedev/inner")).toBe("1000:1000");
    expect(ownerOf(join(liveCred, "inner"))).toBe("1000:1000");
    const info = await docker.getContainer(`shed-${name}`).inspect();
    expect(info.Mounts.find((m) => m.Destination === "/home/shed/.live")?.Source).toBe(liveCred);
  });

  it("survives stop and start, copied credentials included", async () => {
    await op(server, "POST", `/api/sheds/${name}/stop`);
    const start = await op(server, "POST", `/api/sheds/${name}/start`);
    expect(resultOf(start).status).toBe("running");
    expect(stepEnd(start, "credentials").message).toContain("1 copied credential refreshed");
    expect(await asShed(name, "id -u; id -g")).toBe("1234\n1234");
    expect(await asShed(name, "stat -c '%u:%g' ~/.config/token")).toBe("1234:1234");
    await asShed(name, "touch /workspace/after-restart ~/z");
    expect(ownerOf(join(project, "after-restart"))).toBe("1234:1234");
  });
});

describe("owners user shed cannot take", () => {
  it("root: create warns that the shed cannot write the directory, and goes on", async () => {
    const dir = tempDir("root-owned");
    const name = uniqueName("rootdir");
    const events = await op(server, "POST", "/api/sheds", { name, local_dir: dir });
    expect(resultOf(events).status).toBe("running");
    expect(stepEnd(events, "local_dir").outcome).toBe("warning");
    const [warning] = warningsOf(events, "local_dir");
    expect(warning).toBe(`${dir} is owned by root on the server: user shed cannot write it`);
    expect(events.find((e) => e.type === "warning" && e.step === "local_dir").hint).toContain("chown");
    expect((await dockerExec(name, ["touch", "/workspace/x"])).code).not.toBe(0);
    expect(await asShed(name, "id -u")).toBe("1000");
  });

  it("a uid that is another account in the image: shed keeps its uid, and the warning names the account", async () => {
    const dir = tempDir("nobody-owned");
    chown("65534:65534", dir);
    const name = uniqueName("nobody");
    const events = await op(server, "POST", "/api/sheds", { name, local_dir: dir });
    expect(resultOf(events).status).toBe("running");
    const warnings = warningsOf(events, "local_dir");
    expect(warnings[0]).toContain(`uid 65534, the owner of ${dir}, is the account "nobody" in the image`);
    expect(await asShed(name, "id -u; id -un")).toBe("1000\nshed");
    expect(await dockerExec(name, ["id", "-un", "nobody"], "root")).toMatchObject({ stdout: "nobody\n" });
  });

  it("a gid that is another group in the image becomes shed's primary group, named in a warning", async () => {
    const dir = tempDir("users-group");
    chown("1235:100", dir);
    const name = uniqueName("usersgid");
    const events = await op(server, "POST", "/api/sheds", { name, local_dir: dir });
    expect(resultOf(events).status).toBe("running");
    expect(warningsOf(events, "local_dir")[0]).toContain("gid 100, the group of");
    expect(warningsOf(events, "local_dir")[0]).toContain('is the group "users" in the image');
    expect(await asShed(name, "id -u; id -g")).toBe("1235\n100");
    await asShed(name, "touch /workspace/x");
    expect(ownerOf(join(dir, "x"))).toBe("1235:100");
  });
});
