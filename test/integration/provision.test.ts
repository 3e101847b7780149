import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type CliUser, cliOk } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import {
  createLocal,
  getShed,
  guestFile,
  hooksOf,
  op,
  outputOf,
  resultOf,
  stepEnd,
  workspace,
} from "../helpers/provision.js";
import type { TestServer } from "../helpers/server.js";

/**
 * Provisioning (seed: Provisioning) against the real engine: PATH propagation,
 * the provision file's env, hook logs, --no-provision, through the API and the
 * packaged CLI (run `npm run build` first). Failures and limits are in
 * provision-failures.test.ts, stop/delete and restarts in provision-stop.test.ts.
 */
let server: TestServer;
let cli: CliUser;

useCliServer((s, user) => {
  server = s;
  cli = user;
});

async function imagePath(name: string): Promise<string[]> {
  const env = (await docker.getContainer(`shed-${name}`).inspect()).Config.Env;
  const path = env.find((e) => e.startsWith("PATH="));
  if (!path) throw new Error("the container has no PATH");
  return path.slice(5).split(":");
}

/** Runs a program without blocking the event loop (the test server runs in this process). */
function runAsync(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 30_000 }, (_err, stdout, stderr) => resolve({ stdout, stderr }));
  });
}

const PROFILE = "/etc/profile.d/shed-installed-tools.sh";

describe("PATH propagation", () => {
  it("a tool an installer adds to ~/.bashrc is found by the startup hook, exec and login shells", async () => {
    const name = uniqueName("bashrc");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh\n",
      "install.sh": [
        "#!/bin/bash",
        "set -eu",
        'mkdir -p "$HOME/.mytool/bin"',
        "printf '#!/bin/sh\\necho mytool-ran\\n' > \"$HOME/.mytool/bin/mytool\"",
        'chmod +x "$HOME/.mytool/bin/mytool"',
        // What installers such as bun's do: edit ~/.bashrc only.
        'echo \'export PATH="$HOME/.mytool/bin:$PATH"\' >> "$HOME/.bashrc"',
        "",
      ].join("\n"),
      "startup.sh": '#!/bin/bash\necho "startup found $(command -v mytool)"\nmytool\n',
    });
    const { events, shed } = await createLocal(server, name, dir);
    expect(shed.status).toBe("running");
    expect((await getShed(server, name)).provision.path_added).toEqual(["/home/shed/.mytool/bin"]);
    expect(stepEnd(events, "path_capture").message).toContain("/home/shed/.mytool/bin");

    const hooks = await hooksOf(server, name);
    expect(hooks.startup.state).toBe("succeeded");
    const startupOut = outputOf(events, "startup_hook");
    expect(startupOut).toContain("startup found /home/shed/.mytool/bin/mytool\n");
    expect(startupOut).toContain("mytool-ran\n");

    // shed exec: PATH from the server, the install's entry first, then the image's own entries in their order.
    expect((await cliOk(cli, ["exec", name, "--", "mytool"])).stdout).toBe("mytool-ran\n");
    const execPath = (await cliOk(cli, ["exec", name, "--", "printenv", "PATH"])).stdout.trim();
    expect(execPath.split(":")).toEqual(["/home/shed/.mytool/bin", ...(await imagePath(name))]);

    // A login shell over SSH resets PATH in /etc/profile; the profile.d script puts the tool back, in front.
    const login = await cliOk(cli, ["exec", name, "--", "bash", "-lc", 'command -v mytool; echo "$PATH"']);
    const [found, loginPath] = login.stdout.trim().split("\n");
    expect(found).toBe("/home/shed/.mytool/bin/mytool");
    expect(loginPath).toBe("/home/shed/.mytool/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games");
    // And without Shed's env at all: a plain docker exec login shell (non-interactive, so ~/.bashrc returns early).
    const plain = await dockerExec(name, ["bash", "-lc", "command -v mytool"]);
    expect(plain.stdout).toBe("/home/shed/.mytool/bin/mytool\n");

    const profile = await guestFile(name, PROFILE);
    expect(profile).toContain("/home/shed/.mytool/bin");
    expect(await guestFile(name, "/var/lib/shed/installed-path")).toBe("/home/shed/.mytool/bin\n");
  });

  it("mise shims are captured although the install did not touch PATH", async () => {
    // Real mise cannot be installed here (no network access to its releases): this simulates what
    // `mise use --global` leaves behind, the shims directory with an executable in it.
    const name = uniqueName("mise");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh\n",
      "install.sh":
        '#!/bin/bash\nset -eu\nshims="$HOME/.local/share/mise/shims"\nmkdir -p "$shims"\n' +
        'printf \'#!/bin/sh\\necho fake-tool-ran\\n\' > "$shims/fake-tool"\nchmod +x "$shims/fake-tool"\n',
      "startup.sh": '#!/bin/bash\nset -e\necho "startup found $(command -v fake-tool)"\nfake-tool\n',
    });
    const { events } = await createLocal(server, name, dir);
    expect((await getShed(server, name)).provision.path_added).toEqual(["/home/shed/.local/share/mise/shims"]);
    expect((await hooksOf(server, name)).startup.state).toBe("succeeded");
    expect(outputOf(events, "startup_hook")).toContain(
      "startup found /home/shed/.local/share/mise/shims/fake-tool\nfake-tool-ran\n",
    );
    expect((await cliOk(cli, ["exec", name, "--", "fake-tool"])).stdout).toBe("fake-tool-ran\n");
  });

  it("a ~/.bashrc that prints, reads stdin and is slow does not corrupt the captured PATH", async () => {
    const name = uniqueName("noisy");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh": [
        "#!/bin/bash",
        "set -eu",
        'mkdir -p "$HOME/.noisy/bin"',
        "printf '#!/bin/sh\\necho noisy-ran\\n' > \"$HOME/.noisy/bin/noisy\"",
        'chmod +x "$HOME/.noisy/bin/noisy"',
        "cat >> \"$HOME/.bashrc\" <<'EOF'",
        "echo hello-from-bashrc",
        'echo "PATH=/not/this:/nor/this"',
        "printf 'no newline at the end: a:b:c'",
        "read -r answer",
        "sleep 2",
        'export PATH="$HOME/.noisy/bin:$PATH"',
        "echo goodbye-from-bashrc >&2",
        "EOF",
        "",
      ].join("\n"),
    });
    await createLocal(server, name, dir);
    expect((await hooksOf(server, name)).install.state).toBe("succeeded");
    expect((await getShed(server, name)).provision.path_added).toEqual(["/home/shed/.noisy/bin"]);
    expect(await guestFile(name, "/var/lib/shed/installed-path")).toBe("/home/shed/.noisy/bin\n");
    expect((await cliOk(cli, ["exec", name, "--", "noisy"])).stdout).toBe("noisy-ran\n");
  });
});

describe("hooks", () => {
  it("a hook without the execute bit runs (Shed makes it executable)", async () => {
    const name = uniqueName("nox");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  startup: startup.sh\n",
      "startup.sh": { content: "#!/bin/bash\necho ran-without-x-bit\n", mode: 0o644 },
    });
    const { events } = await createLocal(server, name, dir);
    expect((await hooksOf(server, name)).startup).toMatchObject({ state: "succeeded", exit_code: 0 });
    expect(outputOf(events, "startup_hook")).toBe("ran-without-x-bit\n");
    expect(statSync(join(dir, "startup.sh")).mode & 0o100).toBe(0o100);
  });

  it("no_provision skips install and startup; a later start runs the startup hook (never the install)", async () => {
    const name = uniqueName("noprov");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh\n",
      "install.sh": "#!/bin/bash\necho installed >> /workspace/install-ran\n",
      "startup.sh": "#!/bin/bash\necho started >> /workspace/startup-ran\n",
    });
    const { events } = await createLocal(server, name, dir, { no_provision: true });
    expect(stepEnd(events, "install_hook")).toMatchObject({ outcome: "skipped", message: "--no-provision" });
    expect(stepEnd(events, "startup_hook")).toMatchObject({ outcome: "skipped", message: "--no-provision" });
    let hooks = await hooksOf(server, name);
    expect(hooks.install.state).toBe("skipped");
    expect(hooks.startup.state).toBe("skipped");
    expect(await guestFile(name, "/workspace/install-ran")).toBeUndefined();
    expect(await guestFile(name, "/workspace/startup-ran")).toBeUndefined();

    resultOf(await op(server, "POST", `/api/sheds/${name}/stop`));
    const started = resultOf(await op(server, "POST", `/api/sheds/${name}/start`));
    expect(started.status).toBe("running");
    hooks = await hooksOf(server, name);
    expect(hooks.startup.state).toBe("succeeded");
    expect(hooks.install.state).toBe("skipped");
    expect(readFileSync(join(dir, "startup-ran"), "utf8")).toBe("started\n");
    expect(await guestFile(name, "/workspace/install-ran")).toBeUndefined();
    expect(await guestFile(name, "/var/lib/shed/install.done")).toBeUndefined();
  });

  it("hook output streams as output events, lands in the log, rotates to .1, and shows in shed logs/status", async () => {
    const name = uniqueName("logs");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh\n",
      "install.sh": "#!/bin/bash\necho install-out\necho install-err >&2\n",
      "startup.sh": [
        "#!/bin/bash",
        "n=$(( $(cat /workspace/.runs 2>/dev/null || echo 0) + 1 ))",
        "echo $n > /workspace/.runs",
        'echo "startup run $n"',
        "",
      ].join("\n"),
    });
    const { events } = await createLocal(server, name, dir);
    const outputs = events.filter((e) => e.type === "output");
    expect(outputOf(events, "install_hook")).toContain("install-out\n");
    expect(outputOf(events, "install_hook")).toContain("install-err\n");
    expect(outputOf(events, "startup_hook")).toBe("startup run 1\n");
    // Output arrives between its step's start and end.
    const idx = (pred: (e: any) => boolean) => events.findIndex(pred);
    const firstStartupOut = idx((e) => e.type === "output" && e.step === "startup_hook");
    expect(firstStartupOut).toBeGreaterThan(idx((e) => e.type === "step" && e.step === "startup_hook"));
    expect(firstStartupOut).toBeLessThan(idx((e) => e.type === "step_end" && e.step === "startup_hook"));
    expect(outputs.every((e) => ["install_hook", "startup_hook"].includes(e.step))).toBe(true);

    expect(await guestFile(name, "/var/log/shed/install.log")).toBe("install-out\ninstall-err\n");
    expect(await guestFile(name, "/var/log/shed/startup.log")).toBe("startup run 1\n");

    resultOf(await op(server, "POST", `/api/sheds/${name}/stop`));
    const start = await op(server, "POST", `/api/sheds/${name}/start`);
    expect(outputOf(start, "startup_hook")).toBe("startup run 2\n");
    expect(await guestFile(name, "/var/log/shed/startup.log")).toBe("startup run 2\n");
    expect(await guestFile(name, "/var/log/shed/startup.log.1")).toBe("startup run 1\n");
    // The install did not run again, so its log was not rotated.
    expect(await guestFile(name, "/var/log/shed/install.log.1")).toBeUndefined();

    expect((await cliOk(cli, ["logs", name, "startup"])).stdout).toBe("startup run 2\n");
    const status = JSON.parse((await cliOk(cli, ["status", name, "--json"])).stdout);
    expect(status.provision.hooks.install).toMatchObject({
      state: "succeeded",
      exit_code: 0,
      log: "/var/log/shed/install.log",
      script: "install.sh",
    });
    expect(status.provision.hooks.startup).toMatchObject({ state: "succeeded", log: "/var/log/shed/startup.log" });
    expect(status.provision.hooks.shutdown.state).toBe("never_run");
    const human = (await cliOk(cli, ["status", name])).stdout;
    expect(human).toMatch(/^\s+startup\s+succeeded\s+0\s+/m);
  });
});

describe("the provision file's env", () => {
  it("is set in hooks, in shed exec, in SSH login shells and plain ssh commands", async () => {
    const name = uniqueName("env");
    const dir = workspace({
      ".shed/provision.yaml": 'hooks:\n  startup: startup.sh\nenv:\n  GREETING: "hello world"\n  ANSWER: 42\n',
      "startup.sh": '#!/bin/bash\necho "hook sees [$GREETING] [$ANSWER] [$SHED_NAME]"\n',
    });
    const { events, shed } = await createLocal(server, name, dir);
    expect(shed.provision.env.sort()).toEqual(["ANSWER", "GREETING"]);
    expect(outputOf(events, "startup_hook")).toBe(`hook sees [hello world] [42] [${name}]\n`);
    expect((await cliOk(cli, ["exec", name, "--", "printenv", "GREETING", "ANSWER"])).stdout).toBe("hello world\n42\n");
    const login = await cliOk(cli, ["exec", name, "--", "bash", "-lc", 'echo "[$GREETING]"']);
    expect(login.stdout).toBe("[hello world]\n");
    // A plain `ssh host command` (not the CLI's exec path): the server runs it in a login shell.
    const host = readFileSync(join(cli.dir, "default_host"), "utf8").trim();
    const ssh = await runAsync(
      "ssh",
      ["-F", join(cli.dir, "ssh_config"), "-T", "-l", name, host, 'echo "[$GREETING] [$SHED_WORKSPACE]"'],
      cli.env,
    );
    expect(ssh.stdout, ssh.stderr).toBe("[hello world] [/workspace]\n");
    // The file's values do not leak into the image: a plain docker exec does not have them.
    expect((await dockerExec(name, ["printenv", "GREETING"])).code).toBe(1);
    expect((await getShed(server, name)).provision.env).not.toContain("hello world");
  });
});
