import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import {
  createLocal,
  getShed,
  guestFile,
  hooksOf,
  op,
  outputOf,
  processes,
  resultOf,
  stepEnd,
  waitFor,
  warningsOf,
  workspace,
  writeFiles,
} from "../helpers/provision.js";
import { type TestServer, useTestServer } from "../helpers/server.js";

/**
 * Hooks that fail, hang, escape the workspace or leave daemons behind, and
 * provision files that are wrong (seed: Error Handling: provisioning problems
 * are warnings and create continues).
 */
let server: TestServer;
useTestServer((s) => {
  server = s;
});

const STATE_FILE = "/var/lib/shed/install.done";

describe("a failing install", () => {
  it("is recorded as failed with its tail and log, warns, is not marked done, and `provision` re-runs it", async () => {
    const name = uniqueName("failinst");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh":
        "#!/bin/bash\necho preparing\nfor i in 1 2 3; do echo \"step $i\"; done\necho 'giving up' >&2\nexit 3\n",
      "notes.txt": "my work\n",
    });
    const { events, shed } = await createLocal(server, name, dir);
    expect(shed.status).toBe("running");

    const install = (await hooksOf(server, name)).install;
    expect(install).toMatchObject({ state: "failed", exit_code: 3, log: "/var/log/shed/install.log" });
    expect(install.tail.slice(-3)).toEqual(["step 2", "step 3", "giving up"]);
    const [warning, ...more] = warningsOf(events, "install_hook");
    expect(more).toEqual([]);
    expect(warning).toMatch(/^install hook \(install\.sh\) failed: exited with 3; log: \/var\/log\/shed\/install\.log/);
    expect(warning).toContain("giving up");
    expect(stepEnd(events, "install_hook").outcome).toBe("warning");
    expect(stepEnd(events, "path_capture").outcome).toBe("skipped");
    expect(await guestFile(name, STATE_FILE)).toBeUndefined();
    expect(await guestFile(name, "/var/log/shed/install.log")).toBe("preparing\nstep 1\nstep 2\nstep 3\ngiving up\n");

    writeFiles(dir, { "install.sh": "#!/bin/bash\necho fixed-install\n" });
    const again = await op(server, "POST", `/api/sheds/${name}/provision`);
    expect(resultOf(again).provision.hooks.install).toMatchObject({ state: "succeeded", exit_code: 0 });
    expect(warningsOf(again)).toEqual([]);
    expect(outputOf(again, "install_hook")).toBe("fixed-install\n");
    expect(JSON.parse((await guestFile(name, STATE_FILE)) ?? "{}")).toHaveProperty("completed_at");
    // Nothing was lost on the way: the failed run's log is kept as .1, the workspace is untouched.
    expect(await guestFile(name, "/var/log/shed/install.log")).toBe("fixed-install\n");
    expect(await guestFile(name, "/var/log/shed/install.log.1")).toContain("giving up");
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("my work\n");
  });
});

describe("provision.yaml problems", () => {
  it("a YAML syntax error is a warning with file:line:col, create continues, and no hook runs", async () => {
    const name = uniqueName("badyaml");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh: extra\n",
      "install.sh": "#!/bin/bash\ntouch /workspace/install-ran\n",
      "startup.sh": "#!/bin/bash\ntouch /workspace/startup-ran\n",
    });
    const { events, shed } = await createLocal(server, name, dir);
    expect(shed.status).toBe("running");
    const [warning] = warningsOf(events, "provision_file");
    expect(warning).toMatch(/^\.shed\/provision\.yaml:3:12: YAML syntax: /);
    expect(shed.provision.warnings).toEqual([warning]);
    expect((await getShed(server, name)).provision.warnings).toEqual([warning]);
    const hooks = await hooksOf(server, name);
    expect([hooks.install.state, hooks.startup.state]).toEqual(["never_run", "never_run"]);
    expect(existsSync(join(dir, "install-ran"))).toBe(false);
    expect(existsSync(join(dir, "startup-ran"))).toBe(false);
  });

  it("refuses a hook leaving the workspace, a bad env name and an unknown key, with positions; the rest applies", async () => {
    const name = uniqueName("escape");
    const dir = workspace({
      ".shed/provision.yaml": [
        "hooks:",
        "  install: ../outside.sh",
        "  startup: startup.sh",
        "env:",
        "  GOOD_VAR: kept",
        "  1BAD: x",
        "unknown_key: true",
        "",
      ].join("\n"),
      "startup.sh": '#!/bin/bash\necho "startup sees [$GOOD_VAR]"\n',
    });
    const { events, shed } = await createLocal(server, name, dir);
    expect(shed.status).toBe("running");
    expect(shed.provision.warnings).toEqual([
      '.shed/provision.yaml:2:12: hooks.install: leaves the workspace (got "../outside.sh") (refused)',
      '.shed/provision.yaml:6:3: env.1BAD: "1BAD" is not a valid environment variable name (refused)',
      ".shed/provision.yaml:7:1: unknown_key: unknown field (refused)",
    ]);
    expect(warningsOf(events, "provision_file")).toEqual(shed.provision.warnings.map((w: string) => w));
    expect(stepEnd(events, "install_hook")).toMatchObject({ outcome: "skipped" });
    expect(shed.provision.hooks.install.state).toBe("never_run");
    // The valid parts apply: the startup hook runs with GOOD_VAR, and exec/SSH get it too.
    expect(outputOf(events, "startup_hook")).toBe("startup sees [kept]\n");
    expect(shed.provision.env).toEqual(["GOOD_VAR"]);
    const env = server.service.guestEnv(shed);
    expect(env.GOOD_VAR).toBe("kept");
    expect(Object.keys(env)).not.toContain("1BAD");
  });

  it("refuses at run time a hook that is a symlink resolving outside /workspace", async () => {
    const name = uniqueName("symlink");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  startup: hostname-link.sh\n  shutdown: evil-link.sh\n",
      "hostname-link.sh": { link: "/etc/hostname" },
      "evil-link.sh": { link: "/tmp/evil.sh" },
    });
    const { events } = await createLocal(server, name, dir);
    const startup = (await hooksOf(server, name)).startup;
    expect(startup.state).toBe("failed");
    expect(startup.message).toBe(
      "shed: startup hook: hostname-link.sh resolves to /etc/hostname, outside /workspace; refused",
    );
    expect(warningsOf(events, "startup_hook").join("\n")).toContain("resolves to /etc/hostname, outside /workspace");

    // A real script elsewhere in the shed, executable and harmful: still refused, never run.
    const evil = "#!/bin/bash\ntouch /tmp/evil-ran\n";
    await dockerExec(name, ["sh", "-c", 'printf "%s" "$1" > /tmp/evil.sh && chmod 755 /tmp/evil.sh', "sh", evil]);
    const run = await op(server, "POST", `/api/sheds/${name}/provision`, { hook: "shutdown" });
    expect(resultOf(run).provision.hooks.shutdown).toMatchObject({
      state: "failed",
      message: "shed: shutdown hook: evil-link.sh resolves to /tmp/evil.sh, outside /workspace; refused",
    });
    expect(await guestFile(name, "/tmp/evil-ran")).toBeUndefined();
    expect(await guestFile(name, "/tmp/evil.sh")).toBe(evil);
  });
});

describe("time limits and processes", () => {
  it("a hanging hook times out and its whole process tree is gone afterwards", async () => {
    const name = uniqueName("hang");
    const dir = workspace({
      ".shed/provision.yaml": "timeout: 2s\nhooks:\n  install: install.sh\n  startup: hang.sh\n",
      "install.sh": "#!/bin/bash\necho installed\n",
      // A background sleep, one that ignores SIGTERM (it outlives the hook's own process), and a foreground one.
      "hang.sh": "#!/bin/bash\necho hanging\nsleep 1000 &\n(trap '' TERM; sleep 1000; :) &\nsleep 1000\n",
      "notes.txt": "keep\n",
    });
    const before = Date.now();
    const { events, shed } = await createLocal(server, name, dir);
    expect(Date.now() - before).toBeLessThan(60_000);
    expect(shed.status).toBe("running");
    const startup = (await hooksOf(server, name)).startup;
    expect(startup).toMatchObject({ state: "timed_out", message: "killed after the startup hook's time limit of 2s" });
    expect(startup.duration_ms).toBeGreaterThanOrEqual(2000);
    expect(startup.tail).toEqual(["hanging"]);
    expect(warningsOf(events, "startup_hook").join("\n")).toContain("time limit of 2s");
    // Gone as soon as the run is over: nothing is left to wait for.
    expect((await processes(name)).filter((p) => p.includes("sleep 1000") || p.includes("hang.sh"))).toEqual([]);
    // No data lost: install state, logs and workspace are all there.
    expect(await guestFile(name, STATE_FILE)).toContain('"completed_at"');
    expect(await guestFile(name, "/var/log/shed/startup.log")).toBe("hanging\n");
    expect(await guestFile(name, "/var/log/shed/install.log")).toBe("installed\n");
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("keep\n");
  });

  it("a startup hook leaving a daemon that holds its stdout returns promptly, and the daemon lives on", async () => {
    const name = uniqueName("daemon");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  startup: startup.sh\n",
      "startup.sh": [
        "#!/bin/bash",
        "nohup sleep 600 &",
        "(sleep 601 &)",
        "bash -c 'while sleep 0.2; do echo tick; done' &",
        "echo daemons-started",
        "",
      ].join("\n"),
    });
    const before = Date.now();
    const { events } = await createLocal(server, name, dir);
    expect(Date.now() - before).toBeLessThan(30_000);
    expect(stepEnd(events, "startup_hook").duration_ms).toBeLessThan(10_000);
    expect((await hooksOf(server, name)).startup).toMatchObject({ state: "succeeded", exit_code: 0 });
    expect(outputOf(events, "startup_hook")).toContain("daemons-started\n");
    const ps = await processes(name);
    expect(ps).toContain("sleep 600");
    expect(ps).toContain("sleep 601");
    // The ticking daemon keeps writing to the log file after the hook is over (it was never cut off).
    const ticks = async () => (await guestFile(name, "/var/log/shed/startup.log"))?.split("tick").length ?? 0;
    const seen = await ticks();
    await waitFor("the daemon to keep writing", async () => (await ticks()) > seen + 2);
    expect(await processes(name)).toContain("sleep 600");
  });
});

describe("bad hooks never lose data", () => {
  it("after failing, timed-out and refused hooks the workspace, state file and logs are intact", async () => {
    const name = uniqueName("nolose");
    const dir = workspace({
      ".shed/provision.yaml": "timeout: 2s\nhooks:\n  install: install.sh\n  startup: startup.sh\n",
      "install.sh": "#!/bin/bash\necho installed\n",
      "startup.sh": "#!/bin/bash\necho first-startup\n",
      "src/app.txt": "source code\n",
    });
    await createLocal(server, name, dir);
    const state = await guestFile(name, STATE_FILE);
    expect(state).toContain("completed_at");
    const variants: [string, Record<string, any>][] = [
      ["#!/bin/bash\necho failing\nexit 9\n", { state: "failed", exit_code: 9 }],
      ["#!/bin/bash\necho slow\nsleep 60\n", { state: "timed_out" }],
      // Killed, but not by the time limit: a failure, not a timeout.
      ["#!/bin/bash\necho killed\nkill -KILL $$\n", { state: "failed", exit_code: 137 }],
    ];
    let previous = "first-startup\n";
    for (const [script, expected] of variants) {
      writeFiles(dir, { "startup.sh": script });
      const run = await op(server, "POST", `/api/sheds/${name}/provision`, { hook: "startup" });
      expect(resultOf(run).provision.hooks.startup).toMatchObject(expected);
      expect(await guestFile(name, "/var/log/shed/startup.log.1")).toBe(previous);
      previous = (await guestFile(name, "/var/log/shed/startup.log")) ?? "";
      expect(previous).not.toBe("");
      expect(await guestFile(name, STATE_FILE)).toBe(state);
      expect(await guestFile(name, "/var/log/shed/install.log")).toBe("installed\n");
      expect(readFileSync(join(dir, "src/app.txt"), "utf8")).toBe("source code\n");
    }
    // A refused hook path changes nothing at all, not even the logs.
    writeFiles(dir, { ".shed/provision.yaml": "hooks:\n  startup: /etc/passwd\n" });
    const refused = await op(server, "POST", `/api/sheds/${name}/provision`, { hook: "startup" });
    expect(warningsOf(refused, "provision_file")[0]).toMatch(/^\.shed\/provision\.yaml:2:12: hooks\.startup: /);
    expect(await guestFile(name, "/var/log/shed/startup.log")).toBe(previous);
    expect(await guestFile(name, STATE_FILE)).toBe(state);
    expect(readFileSync(join(dir, "src/app.txt"), "utf8")).toBe("source code\n");
  });
});
