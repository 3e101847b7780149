import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { type CliUser, cliOk, json, show } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { containerExists, dockerExec, volumeExists } from "../helpers/docker.js";
import { makeGitRepo } from "../helpers/host.js";
import { runProcess } from "../helpers/host-tmux.js";
import { uniqueName } from "../helpers/names.js";
import { waitFor } from "../helpers/provision.js";

/**
 * Defects a new user met on the first try, through the packaged CLI (bin/shed,
 * the `shed exec` fast path included) against a real shed-server, the real
 * Docker engine, real git and the real OpenSSH client. Run `npm run build` first.
 */

let user: CliUser;
useCliServer((_server, cli) => {
  user = cli;
});

/** Every file of a checkout but .git, with a hash of its bytes and its mode: what "unchanged" means. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    if (rel === ".git" || rel.startsWith(".git/")) continue;
    const st = statSync(join(dir, rel));
    const hash = st.isFile()
      ? createHash("sha256")
          .update(readFileSync(join(dir, rel)))
          .digest("hex")
      : "dir";
    files[rel] = `${st.mode.toString(8)} ${hash}`;
  }
  return files;
}

const gitStatus = (dir: string) => execFileSync("git", ["-C", dir, "status", "--porcelain"], { encoding: "utf8" });

describe("--repo with a local checkout never writes into it", () => {
  let top: string;
  let before: Record<string, string>;

  beforeAll(() => {
    top = makeGitRepo({
      "README.md": "the top of the repository\n",
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh": "#!/bin/sh\necho top-install > /workspace/installed-by\n",
      "examples/hello/README.md": "an example\n",
      "examples/hello/.shed/provision.yaml": "hooks:\n  install: hi.sh\n",
    });
    before = snapshot(top);
  });

  test("a directory inside the checkout is refused before anything is made, naming both ways forward", async () => {
    const name = uniqueName("subdir");
    const sub = join(top, "examples", "hello");
    const res = await user.run(["create", name, "--repo", sub, "--no-sync"]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain(`${sub} is inside the git checkout ${top}`);
    expect(res.stderr).toContain(`--repo ${top}: the whole repository is copied, and its own .shed/provision.yaml`);
    expect(res.stderr).toContain(`--local-dir ${sub} for just that directory`);
    const asJson = await user.run(["--json", "create", name, "--repo", sub, "--no-sync"]);
    expect(json(asJson).error.code).toBe("INVALID_REQUEST");
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
    // No file named "-" (or anything else) appeared in the user's checkout.
    expect(snapshot(top)).toEqual(before);
    expect(gitStatus(top)).toBe("");
  });

  test("the checkout's top is copied whole, and the checkout is byte-identical afterwards", async () => {
    const name = uniqueName("top");
    const res = await cliOk(user, ["create", name, "--repo", top, "--no-sync"]);
    expect(res.stderr).not.toMatch(/warning \(clone\)/);
    const readme = await dockerExec(name, ["cat", "/workspace/examples/hello/README.md"]);
    expect(readme.stdout).toBe("an example\n");
    // The top's own provision.yaml ran.
    expect((await dockerExec(name, ["cat", "/workspace/installed-by"])).stdout).toBe("top-install\n");
    expect(snapshot(top)).toEqual(before);
    expect(gitStatus(top)).toBe("");
  });

  test("a failed git bundle stops the command with a clear error before the shed is created", async () => {
    const broken = makeGitRepo({ "a.txt": "some content\n", "b.txt": "more content\n" });
    // A blob the commit needs is missing: `git bundle create` starts writing, then fails.
    const blob = execFileSync("git", ["-C", broken, "rev-parse", "HEAD:a.txt"], { encoding: "utf8" }).trim();
    unlinkSync(join(broken, ".git", "objects", blob.slice(0, 2), blob.slice(2)));
    const name = uniqueName("badbundle");
    const res = await user.run(["create", name, "--repo", broken, "--no-sync"]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`error: git bundle of ${broken} failed \\(exit \\d+\\)`));
    expect(res.stderr).toContain("nothing was created");
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
    expect(readdirSync(broken).sort()).toEqual([".git", "a.txt", "b.txt"]);
  });
});

describe("a command that cannot run fails as in a shell", () => {
  let name: string;

  beforeAll(async () => {
    name = uniqueName("exec");
    await cliOk(user, ["create", name, "--no-sync"]);
    // A file that exists but cannot be executed, and a directory, in the workspace.
    await dockerExec(name, [
      "sh",
      "-c",
      "printf 'echo hi\\n' > /workspace/notexec.sh && chmod 644 /workspace/notexec.sh",
    ]);
  });

  // The fast path (bin/shed straight to ssh) and the Node CLI (any global option) both.
  const ways: [string, (n: string) => string[]][] = [
    ["fast path", (n) => ["exec", n, "--"]],
    ["Node CLI", (n) => ["--server", "dev", "exec", n, "--"]],
  ];

  test.each(ways)("not found: `CMD: command not found`, exit 127 (%s)", async (_way, prefix) => {
    const res = await user.run([...prefix(name), "nosuchcmd", "--flag"]);
    expect(res.code, show(res)).toBe(127);
    expect(res.stdout).toBe("");
    expect(res.stderr).toBe("nosuchcmd: command not found\n");
  });

  test.each(ways)("not executable: `NAME: Permission denied`, exit 126 (%s)", async (_way, prefix) => {
    const file = await user.run([...prefix(name), "./notexec.sh"]);
    expect(file.code, show(file)).toBe(126);
    expect(file.stdout).toBe("");
    expect(file.stderr).toBe("./notexec.sh: Permission denied\n");
    const dir = await user.run([...prefix(name), "/tmp"]);
    expect(dir.code, show(dir)).toBe(126);
    expect(dir.stderr).toBe("/tmp: Is a directory\n");
    const missing = await user.run([...prefix(name), "./missing"]);
    expect(missing.code, show(missing)).toBe(127);
    expect(missing.stderr).toBe("./missing: No such file or directory\n");
  });

  test("commands that run are untouched: argv exact, exit codes passed through, 126 and 127 included", async () => {
    const argv = ["printf", "%s|", "a b", "$HOME", "*", "'q'", '"d"', "-n", ""];
    expect((await cliOk(user, ["exec", name, "--", ...argv])).stdout).toBe(`a b|$HOME|*|'q'|"d"|-n||`);
    for (const code of [0, 3, 126, 127]) {
      const res = await user.run(["exec", name, "--", "sh", "-c", `exit ${code}`]);
      expect(res.code, show(res)).toBe(code);
      expect(res.stderr).toBe("");
    }
  });

  test("plain ssh (`ssh shed-NAME nosuchcmd`) gives a shell's 127 too", async () => {
    await cliOk(user, ["ssh-config", name, "--install"]);
    const ssh = await runProcess(
      ["ssh", "-F", join(user.dir, ".ssh", "config"), "-o", "BatchMode=yes", `shed-${name}`, "nosuchcmd"],
      user.env,
    );
    expect(ssh.status, ssh.stderr).toBe(127);
    expect(ssh.stderr).toContain("nosuchcmd: command not found");
  });

  test("`shed exec -S` types the command into the session, whose shell reports it", async () => {
    await cliOk(user, ["exec", name, "--", "tmux", "new-session", "-d", "-s", "work", "-c", "/workspace"]);
    const sent = await user.run(["exec", name, "-S", "work", "--", "nosuchcmd"]);
    expect(sent.code, show(sent)).toBe(0);
    const pane = async () => (await dockerExec(name, ["tmux", "capture-pane", "-p", "-t", "=work:"])).stdout;
    await waitFor("the session's shell to report the command", async () =>
      /nosuchcmd: command not found/.test(await pane()),
    );
    // The shell in the session says 127 as well.
    await cliOk(user, [
      "exec",
      name,
      "-S",
      "work",
      "--",
      "sh",
      "-c",
      'echo "status=$(nosuchcmd 2>/dev/null; echo $?)"',
    ]);
    await waitFor("the status line", async () => /status=127/.test(await pane()));
  });
});
