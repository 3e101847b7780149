import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type CliUser, cliOk, json, SHED_BIN, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { dockerExec } from "../helpers/docker.js";
import { HostTmux, runProcess } from "../helpers/host-tmux.js";
import { uniqueName } from "../helpers/names.js";
import { guestFile, waitFor } from "../helpers/provision.js";
import type { TestServer } from "../helpers/server.js";

/**
 * `shed ssh-config`, `shed attach`, `shed sessions` and `shed exec -S`: the
 * packaged CLI against a real shed-server, the real Docker engine and the
 * real OpenSSH client. Interactive attaches run inside a tmux server on the
 * host (its own socket), which plays the user's terminal.
 */

let srv: TestServer;
let user: CliUser;

async function fails(args: string[], code: string, message: string): Promise<void> {
  const human = await user.run(args);
  expect(human.code, show(human)).toBe(1);
  expect(human.stderr).toContain(message);
  const asJson = await user.run(["--json", ...args]);
  expect(asJson.code, show(asJson)).toBe(1);
  expect(json(asJson).error.code).toBe(code);
}

/** tmux in a shed, run with the plain Docker API as user shed (to check what Shed did, independently of it). */
async function guestTmux(shed: string, ...args: string[]): Promise<{ code: number; stdout: string }> {
  return dockerExec(shed, ["tmux", ...args]);
}

/** "name attached-clients" for each session in the shed ([] without a tmux server). */
async function guestSessions(shed: string): Promise<string[]> {
  const r = await guestTmux(shed, "list-sessions", "-F", "#{session_name} #{session_attached}");
  return r.code === 0 ? r.stdout.trim().split("\n").sort() : [];
}

async function paneValue(shed: string, session: string, format: string): Promise<string> {
  return (await guestTmux(shed, "display-message", "-p", "-t", `=${session}:`, format)).stdout.trim();
}

async function counter(shed: string): Promise<number> {
  return Number((await guestFile(shed, "/workspace/count.txt"))?.trim() ?? "0");
}

useCliServer((server, cli) => {
  srv = server;
  user = cli;
});

afterAll(() => {
  for (const t of HostTmux.all) t.kill();
});

describe("shed ssh-config", () => {
  let one: string;
  let two: string;
  const sshConfig = () => join(user.dir, ".ssh", "config");
  const entry = (shed: string) =>
    [
      `Host shed-${shed}`,
      "  HostName 127.0.0.1",
      `  Port ${srv.sshPort}`,
      `  User ${shed}`,
      "  HostKeyAlias shed.dev",
      `  UserKnownHostsFile "${join(user.dir, "known_hosts")}"`,
      `  IdentityFile "${join(user.dir, "id_ed25519")}"`,
      "  IdentitiesOnly yes",
      "  StrictHostKeyChecking yes",
    ].join("\n");
  const block = (...sheds: string[]) =>
    [
      "# >>> shed (managed: shed ssh-config) >>>",
      "# Written by `shed ssh-config --install`; edits inside this block are replaced.",
      sheds.map(entry).join("\n\n"),
      "# <<< shed <<<",
    ].join("\n");

  beforeAll(async () => {
    [one, two] = [uniqueName("cfg-a"), uniqueName("cfg-b")].sort() as [string, string];
    await Promise.all([cliOk(user, ["create", one]), cliOk(user, ["create", two])]);
  });

  test("prints a Host block for one shed, or for every shed of the server", async () => {
    expect((await cliOk(user, ["ssh-config", one])).stdout).toBe(`${entry(one)}\n`);
    const all = (await cliOk(user, ["ssh-config"])).stdout;
    // Other tests' sheds may be there too; these two are in name order.
    expect(all).toContain(`${entry(one)}\n\n${entry(two)}\n`);
    expect(json(await cliOk(user, ["--json", "ssh-config", one]))).toEqual({
      server: "dev",
      hosts: [{ host: `shed-${one}`, shed: one, server: "dev" }],
      config: `${entry(one)}\n`,
    });
    await fails(["ssh-config", uniqueName("missing")], "SHED_NOT_FOUND", "no shed named");
    await fails(["ssh-config", "--install", "--uninstall"], "INVALID_REQUEST", "cannot be used together");
    expect(existsSync(sshConfig())).toBe(false);
  });

  test("--install and --uninstall change only the managed block, byte for byte; --dry-run changes nothing", async () => {
    // CRLF lines, a byte that is not UTF-8, and no final newline.
    const original = Buffer.concat([
      Buffer.from("# mine\r\nHost work\r\n  User bob\r\n\r\n# caf"),
      Buffer.from([0xe9]),
      Buffer.from("\nHost *.example.org\n  ForwardAgent no"),
    ]);
    mkdirSync(join(user.dir, ".ssh"), { mode: 0o700 });
    writeFileSync(sshConfig(), original);
    chmodSync(sshConfig(), 0o640);
    const bytes = () => readFileSync(sshConfig());
    const withBlock = (...sheds: string[]) => Buffer.concat([original, Buffer.from(`\n${block(...sheds)}`)]);

    const dry = await cliOk(user, ["ssh-config", one, "--install", "--dry-run"]);
    expect(dry.stdout).toBe(withBlock(one).toString("utf8"));
    expect(dry.stderr).toContain(`would write ${sshConfig()}`);
    expect(bytes().equals(original)).toBe(true);

    const installed = await cliOk(user, ["ssh-config", one, "--install"]);
    expect(installed.stdout).toContain(`installed shed-${one} in ${sshConfig()}`);
    expect(bytes().equals(withBlock(one))).toBe(true);
    expect(statSync(sshConfig()).mode & 0o777).toBe(0o640);
    expect((await cliOk(user, ["ssh-config", one, "--install"])).stdout).toContain("already up to date");

    // Every shed of the server replaces the block in place; the user's lines after it stay too.
    const after = Buffer.from("\r\nHost after\r\n  User carol\r\n");
    writeFileSync(sshConfig(), Buffer.concat([withBlock(one), after]));
    await cliOk(user, ["ssh-config", "--install"]);
    const full = bytes().toString("latin1");
    expect(full.startsWith(original.toString("latin1"))).toBe(true);
    expect(full.endsWith(after.toString("latin1"))).toBe(true);
    expect(full).toContain(`${entry(one)}\n\n${entry(two)}\n`);

    // Uninstalling one shed keeps the others.
    await cliOk(user, ["ssh-config", two, "--uninstall"]);
    expect(bytes().toString("latin1")).not.toContain(`Host shed-${two}`);
    expect(bytes().toString("latin1")).toContain(`Host shed-${one}`);

    writeFileSync(sshConfig(), withBlock(one));
    const dryOff = await cliOk(user, ["ssh-config", "--uninstall", "--dry-run"]);
    expect(dryOff.stdout).toBe(original.toString("utf8"));
    expect(bytes().equals(withBlock(one))).toBe(true);
    const dryOffJson = json(await cliOk(user, ["--json", "ssh-config", "--uninstall", "--dry-run"]));
    expect(dryOffJson).toMatchObject({ file: sshConfig(), changed: true, dry_run: true, hosts: [] });

    const removed = await cliOk(user, ["ssh-config", "--uninstall"]);
    expect(removed.stdout).toContain(`removed shed-${one} from ${sshConfig()}`);
    expect(bytes().equals(original)).toBe(true);
    expect(statSync(sshConfig()).mode & 0o777).toBe(0o640);
    expect((await cliOk(user, ["ssh-config", "--uninstall"])).stdout).toContain("already up to date");
    expect(bytes().equals(original)).toBe(true);
  });

  test("--dry-run prints exactly the file that --install writes", async () => {
    const home = tempDir("home");
    const env = { HOME: home };
    const file = join(home, ".ssh", "config");
    mkdirSync(join(home, ".ssh"));
    const original = "Host x\n  User y\n";
    writeFileSync(file, original);
    const dry = await user.run(["ssh-config", one, "--install", "--dry-run"], { env });
    expect(dry.code, show(dry)).toBe(0);
    expect(dry.stdout).toBe(`${original}${block(one)}\n`);
    expect(readFileSync(file, "utf8")).toBe(original);
    expect((await user.run(["ssh-config", one, "--install"], { env })).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(dry.stdout);
  });

  test("--install creates ~/.ssh and the file; plain `ssh shed-NAME` then works with it", async () => {
    const home = tempDir("home");
    const file = join(home, ".ssh", "config");
    const res = await user.run(["ssh-config", one, "--install"], { env: { HOME: home } });
    expect(res.code, show(res)).toBe(0);
    expect(statSync(join(home, ".ssh")).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toBe(`${block(one)}\n`);

    // Not spawnSync: the server runs in this process and must keep answering.
    const ssh = await runProcess(
      ["ssh", "-F", file, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", `shed-${one}`, "echo ok; whoami; pwd"],
      { ...process.env, HOME: home },
    );
    expect(ssh.status, ssh.stderr).toBe(0);
    expect(ssh.stdout).toBe("ok\nshed\n/workspace\n");

    // A file Shed made is left empty, not deleted.
    expect((await user.run(["ssh-config", "--uninstall"], { env: { HOME: home } })).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe("");
  });
});

describe("shed attach", () => {
  let shed: string;
  let host: HostTmux;

  beforeAll(async () => {
    shed = uniqueName("attach");
    await cliOk(user, ["create", shed]);
    host = new HostTmux(user.env);
  });

  test("needs a terminal", async () => {
    await fails(["attach", shed], "INVALID_REQUEST", "shed attach needs a terminal");
    await fails(["attach", shed, "-S", "a:b"], "INVALID_REQUEST", "invalid tmux session name");
  });

  test("a session in /workspace that keeps running after detach, and the same one on reattach", async () => {
    host.run("w1", [SHED_BIN, "attach", shed]);
    await waitFor(
      "session main attached in the shed",
      async () => (await guestSessions(shed)).includes("main 1"),
      30_000,
    );

    host.type("w1", "pwd > where.txt; n=0; while :; do n=$((n+1)); echo $n > count.txt; echo tick-$n; sleep 0.1; done");
    await waitFor("the counter in the shed", async () => (await counter(shed)) >= 2, 30_000);
    expect(await guestFile(shed, "/workspace/where.txt")).toBe("/workspace\n");
    const pane = await paneValue(shed, "main", "#{pane_pid}");
    expect(pane).toMatch(/^\d+$/);
    await waitFor("ticks on the host's terminal", async () => /tick-\d+/.test(host.screen("w1")));

    // Detach with the prefix key: shed attach ends with status 0, the session and its loop go on.
    host.keys("w1", "C-b", "d");
    await waitFor("shed attach to end", async () => host.ended("w1") !== undefined);
    expect(host.ended("w1"), host.screen("w1")).toBe("exit 0");
    expect(host.screen("w1")).toContain("[detached (from session main)]");
    expect(await guestSessions(shed)).toEqual(["main 0"]);
    const atDetach = await counter(shed);
    await waitFor("the counter to go on while detached", async () => (await counter(shed)) > atDetach + 3);
    expect(await paneValue(shed, "main", "#{pane_pid}")).toBe(pane);

    // Reattach: the same session, its output still arriving.
    host.respawn("w1", [SHED_BIN, "attach", shed, "-S", "main"]);
    await waitFor("session main attached again", async () => (await guestSessions(shed)).includes("main 1"), 30_000);
    const seen = async () => Math.max(0, ...[...host.screen("w1").matchAll(/tick-(\d+)/g)].map((m) => Number(m[1])));
    await waitFor("ticks after reattach", async () => (await seen()) > atDetach + 3);
    expect(await paneValue(shed, "main", "#{pane_pid}")).toBe(pane);

    // Killing the client (the terminal goes away) detaches too.
    host.respawn("w1", ["true"]);
    await waitFor("the shed's tmux client to go", async () => (await guestSessions(shed)).includes("main 0"), 30_000);
    const atKill = await counter(shed);
    await waitFor("the counter to go on", async () => (await counter(shed)) > atKill + 3);
    expect(await paneValue(shed, "main", "#{pane_pid}")).toBe(pane);
    expect(await guestSessions(shed)).toEqual(["main 0"]);
  });

  test("--new makes a session with a fresh name and says which", async () => {
    const before = await guestSessions(shed);
    host.run("w2", [SHED_BIN, "attach", shed, "--new"]);
    const expected = before.some((s) => s.startsWith("main ")) ? "main-2" : "main";
    try {
      await waitFor(`session ${expected}`, async () => (await guestSessions(shed)).includes(`${expected} 1`), 30_000);
    } catch (err) {
      throw new Error(`${err}\nsessions: ${await guestSessions(shed)}\nhost terminal:\n${host.screen("w2")}`);
    }
    // The shed's tmux reads keys once it has set up the terminal, which it has when its status line shows.
    await waitFor("the shed's status line", async () => host.screen("w2").includes(`[${expected}]`));
    host.keys("w2", "C-b", "d");
    await waitFor("shed attach --new to end", async () => host.ended("w2") !== undefined).catch((err) => {
      throw new Error(`${err}\nhost terminal:\n${host.screen("w2")}`);
    });
    expect(host.screen("w2")).toContain(`shed: new session ${expected} in ${shed}`);
    expect(await guestSessions(shed)).toContain(`${expected} 0`);
  });
});

describe("shed sessions", () => {
  let shed: string;

  beforeAll(async () => {
    shed = uniqueName("sess");
    await cliOk(user, ["create", shed]);
  });

  test("lists nothing in a shed without a tmux server; lists, and kills, sessions", async () => {
    expect(json(await cliOk(user, ["--json", "sessions", shed]))).toEqual({ sessions: [] });
    expect((await cliOk(user, ["sessions", shed])).stdout).toContain("no tmux sessions");

    const started = Math.floor(Date.now() / 1000) - 5;
    expect((await guestTmux(shed, "new-session", "-d", "-s", "alpha")).code).toBe(0);
    expect((await guestTmux(shed, "new-session", "-d", "-s", "beta")).code).toBe(0);
    expect((await guestTmux(shed, "new-window", "-d", "-t", "=beta:")).code).toBe(0);

    const listed = json(await cliOk(user, ["--json", "sessions", shed])).sessions;
    expect(listed.map((s: any) => [s.shed, s.name, s.windows, s.attached, s.clients])).toEqual([
      [shed, "alpha", 1, false, 0],
      [shed, "beta", 2, false, 0],
    ]);
    for (const s of listed) expect(Date.parse(s.created) / 1000).toBeGreaterThanOrEqual(started);

    const human = (await cliOk(user, ["sessions", shed])).stdout.split("\n");
    expect(human[0]).toMatch(/^SHED\s+SESSION\s+WINDOWS\s+CREATED\s+ATTACHED$/);
    expect(human[1]).toMatch(new RegExp(`^${shed}\\s+alpha\\s+1\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+no$`));

    // Without NAME (and with --all): every running shed of the server.
    for (const args of [["sessions"], ["sessions", "--all"]]) {
      const rows = json(await cliOk(user, ["--json", ...args])).sessions.filter((s: any) => s.shed === shed);
      expect(rows.map((s: any) => s.name)).toEqual(["alpha", "beta"]);
    }

    expect((await cliOk(user, ["sessions", "kill", shed, "beta"])).stdout).toBe(`killed session beta in ${shed}\n`);
    expect(await guestSessions(shed)).toEqual(["alpha 0"]);
    await fails(["sessions", "kill", shed, "beta"], "INVALID_REQUEST", `no tmux session "beta" in shed ${shed}`);
    await fails(["sessions", shed, "--all"], "INVALID_REQUEST", "not both");

    // A stopped shed has no sessions, and asking does not start it.
    await cliOk(user, ["stop", shed]);
    expect(json(await cliOk(user, ["--json", "sessions", shed]))).toEqual({ sessions: [] });
    await fails(["sessions", "kill", shed, "alpha"], "INVALID_REQUEST", "(the shed is stopped)");
    const shown = json(await cliOk(user, ["--json", "show", shed]));
    expect(shown.status).toBe("stopped");
  });
});

describe("shed exec -S", () => {
  let shed: string;

  beforeAll(async () => {
    shed = uniqueName("send");
    await cliOk(user, ["create", shed]);
  });

  test("types the command into a session's shell; each argument arrives exactly", async () => {
    // No tmux server at all yet, then no such session: both a clear error.
    await fails(
      ["exec", shed, "-S", "work", "--", "true"],
      "INVALID_REQUEST",
      `no tmux session "work" in shed ${shed}`,
    );
    expect((await guestTmux(shed, "new-session", "-d", "-s", "work", "-c", "/workspace")).code).toBe(0);
    await fails(
      ["exec", shed, "-S", "nope", "--", "true"],
      "INVALID_REQUEST",
      `no tmux session "nope" in shed ${shed}`,
    );

    const args = ["it's", '$HOME "q" `id`', "!!", "a;b && c | d", " spaced  ", "-n", "ünï"];
    const res = await cliOk(user, [
      "exec",
      shed,
      "-S",
      "work",
      "--",
      "sh",
      "-c",
      'printf "[%s]\\n" "$@" > /workspace/sent.tmp && mv /workspace/sent.tmp /workspace/sent.txt',
      "sh",
      ...args,
    ]);
    expect(res.stdout).toBe("");
    await waitFor(
      "the command's file",
      async () => (await guestFile(shed, "/workspace/sent.txt")) !== undefined,
      30_000,
    );
    expect(await guestFile(shed, "/workspace/sent.txt")).toBe(args.map((a) => `[${a}]\n`).join(""));

    // The session's own shell ran it: a variable set there is seen by the next command.
    await cliOk(user, ["exec", shed, "-S", "work", "--", "export", "FROM_SESSION=kept"]);
    await cliOk(user, [
      "--json",
      "exec",
      shed,
      "-S",
      "work",
      "--",
      "sh",
      "-c",
      'echo "$FROM_SESSION" > /workspace/env.txt',
    ]);
    await waitFor("the second command's file", async () => (await guestFile(shed, "/workspace/env.txt")) === "kept\n");

    await fails(["exec", shed, "-S", "work", "--", "echo", "a\tb"], "INVALID_REQUEST", "control character");
    // Without -S, exec still runs the argv directly (the launcher's fast path).
    expect((await cliOk(user, ["exec", shed, "--", "echo", "-S", "x"])).stdout).toBe("-S x\n");
  });
});
