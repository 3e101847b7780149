/**
 * `shed-server install` and `uninstall` through the packaged server, never on the host's systemd
 * (systemd is not PID 1 here): the unit goes to a temp dir, and systemd's presence and systemctl
 * are stood in for by the hidden --systemd-run-dir and --systemctl options, systemctl by a script
 * that records its argv. The unit itself is checked by systemd's own parser (systemd-analyze
 * verify). Restart and stop behaviour under a real systemd is documented in the README, not tested.
 * Budget: 30 s (measured about 13 to 18 s): a few runs of the packaged server, one served for a moment.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findOnPath } from "../../src/core/find-on-path.js";
import { REPO_ROOT, tempDir } from "../helpers/cli.js";
import { serverConfig, startPackaged, stopAllPackaged } from "../helpers/packaged-server.js";

const SCRIPT = join(REPO_ROOT, "dist", "shed-server.mjs");

function shedServer(...args: string[]) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: "utf8", timeout: 30_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

/** A systemctl stand-in: each call's argv as one line of systemctl.log beside it (a fixed script, no value pasted in). */
function recordingSystemctl(dir: string): { program: string; calls: () => string[] } {
  const log = join(dir, "systemctl.log");
  const program = join(dir, "systemctl");
  writeFileSync(program, '#!/bin/sh\nprintf \'%s\\n\' "$*" >> "$(dirname "$0")/systemctl.log"\n');
  chmodSync(program, 0o755);
  return { program, calls: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []) };
}

afterAll(async () => {
  await stopAllPackaged();
});

describe("shed-server install without systemd running", () => {
  // A config path systemd must quote (a space) and escape (%, $).
  const dir = join(tempDir("svc"), "my conf %i $HOME");
  mkdirSync(dir);
  const config = serverConfig(dir);
  const unitDir = tempDir("units");
  const unitFile = join(unitDir, "shed-server.service");

  it("writes the unit, enables nothing, and says what to run and where the logs are", () => {
    const r = shedServer(
      "install",
      "--config",
      config,
      "--unit-dir",
      unitDir,
      "--systemd-run-dir",
      join(unitDir, "no"),
    );
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toContain(`wrote ${unitFile}`);
    expect(r.stdout).toContain("systemctl daemon-reload && systemctl enable --now shed-server.service");
    expect(r.stdout).toContain("journalctl -u shed-server");
    const unit = readFileSync(unitFile, "utf8").split("\n");
    const quotedConfig = `"${config.replaceAll("%", "%%").replaceAll("$", () => "$$")}"`;
    expect(unit).toContain(`ExecStart=${process.execPath} ${realpathSync(SCRIPT)} serve --config ${quotedConfig}`);
    expect(unit).toContain("Restart=on-failure");
    expect(unit).toContain("KillMode=process");
    expect(unit.some((l) => /^User=\S+$/.test(l))).toBe(true);
  });

  it("is a unit systemd's own parser accepts (systemd-analyze verify)", () => {
    // scripts/setup.sh installs Debian's systemd for it (only the tool is used: systemd is not PID 1 here).
    const analyze = findOnPath("systemd-analyze");
    expect(analyze, "systemd-analyze is not installed: run scripts/setup.sh").toBeDefined();
    expect(existsSync(unitFile)).toBe(true);
    const r = spawnSync(analyze as string, ["verify", unitFile], { encoding: "utf8", timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    // verify exits 0 on some problems and only says so: bad quoting, unknown keys, a missing binary.
    expect(r.stderr).toBe("");
  });

  it("uninstall removes it; a second uninstall finds nothing and succeeds", () => {
    const args = ["uninstall", "--unit-dir", unitDir, "--systemd-run-dir", join(unitDir, "no")];
    const r = shedServer(...args);
    expect(r.code, r.out).toBe(0);
    expect(existsSync(unitFile)).toBe(false);
    const again = shedServer(...args);
    expect(again.code, again.out).toBe(0);
    expect(again.stdout).toContain("nothing to uninstall");
  });

  it("refuses a config that does not load, and writes no unit", () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "http_port: [not a port]\n");
    const r = shedServer("install", "--config", bad, "--unit-dir", unitDir, "--systemd-run-dir", join(unitDir, "no"));
    expect(r.code).toBe(1);
    expect(r.out).toContain("bad.yaml:1");
    expect(existsSync(unitFile)).toBe(false);
  });

  it("refuses a unit dir that does not exist, naming it", () => {
    const missing = join(unitDir, "missing");
    const r = shedServer("install", "--config", config, "--unit-dir", missing, "--systemd-run-dir", missing);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`the unit directory ${missing} does not exist`);
  });
});

describe("shed-server install where systemd runs (systemctl recorded)", () => {
  const dir = tempDir("svc-sd");
  const runDir = tempDir("run-systemd");
  const unitDir = tempDir("units-sd");
  const config = serverConfig(dir);

  it("reloads systemd and enables and starts the unit; uninstall stops, disables and removes it", () => {
    const systemctl = recordingSystemctl(tempDir("bin"));
    const opts = ["--unit-dir", unitDir, "--systemd-run-dir", runDir, "--systemctl", systemctl.program];
    const r = shedServer("install", "--config", config, ...opts);
    expect(r.code, r.out).toBe(0);
    expect(systemctl.calls()).toEqual(["daemon-reload", "enable --now shed-server.service"]);
    expect(r.stdout).toContain("enabled and started shed-server.service");
    const u = shedServer("uninstall", ...opts);
    expect(u.code, u.out).toBe(0);
    expect(systemctl.calls().slice(2)).toEqual(["disable --now shed-server.service", "daemon-reload"]);
    expect(existsSync(join(unitDir, "shed-server.service"))).toBe(false);
  });

  it("with a server already on the data_dir, enables the unit but does not start a second one", async () => {
    const running = await startPackaged(config);
    const systemctl = recordingSystemctl(tempDir("bin"));
    const r = shedServer(
      "install",
      "--config",
      config,
      "--unit-dir",
      unitDir,
      "--systemd-run-dir",
      runDir,
      "--systemctl",
      systemctl.program,
    );
    expect(r.code, r.out).toBe(0);
    expect(systemctl.calls()).toEqual(["daemon-reload", "enable shed-server.service"]);
    expect(r.stdout).toContain(`a shed-server (pid ${running.proc.pid}) already uses`);
    expect(r.stdout).toContain("systemctl start shed-server.service");
    await running.stop();
  });
});
