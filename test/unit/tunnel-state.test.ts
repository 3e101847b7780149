import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { ClientConfig } from "../../src/cli/client-config.js";
import { mergeMappings, parseMapping } from "../../src/cli/tunnels/mapping.js";
import { tunnelsRecordedFor } from "../../src/cli/tunnels/recorded.js";
import { readTunnelState, type TunnelEntry, withTunnelState } from "../../src/cli/tunnels/state.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(yaml = ""): ClientConfig {
  const dir = mkdtempSync(join(tmpdir(), "shed-tunnel-unit-"));
  dirs.push(dir);
  writeFileSync(join(dir, "config.yaml"), yaml);
  return ClientConfig.load(join(dir, "config.yaml"));
}

const entry = (shed: string, local: number): TunnelEntry => ({
  server: "dev",
  shed,
  local,
  remote: local,
  pid: process.pid,
  background: true,
  started: "2026-01-01T00:00:00.000Z",
});

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("tunnel mappings", () => {
  test("PORT, LOCAL:REMOTE and YAML numbers; anything else is not a mapping", () => {
    expect(parseMapping("3000")).toEqual({ local: 3000, remote: 3000 });
    expect(parseMapping("8080:80")).toEqual({ local: 8080, remote: 80 });
    expect(parseMapping(5432)).toEqual({ local: 5432, remote: 5432 });
    for (const bad of ["0", "65536", "1:0", "a", "80:", ":80", "1:2:3", " 80", "-1", "80.5", ""]) {
      expect(parseMapping(bad), bad).toBeUndefined();
    }
  });

  test("profiles merge in order, then -t; a repeat counts once; an unknown profile is named", () => {
    const profiles = { web: ["3000", "5432:5432"], db: [5432] };
    const merged = mergeMappings(profiles, { profiles: ["web", "db"], specs: ["9000:90"] }, "cfg.yaml");
    expect(merged.map((m) => [m.local, m.remote, m.from])).toEqual([
      [3000, 3000, "profile web"],
      [5432, 5432, "profile web"],
      [9000, 90, "-t 9000:90"],
    ]);
    expect(() => mergeMappings(profiles, { profiles: ["nope"], specs: [] }, "cfg.yaml")).toThrow(
      'no tunnel profile "nope" in cfg.yaml',
    );
    expect(() => mergeMappings(profiles, { profiles: [], specs: ["99999"] }, "cfg.yaml")).toThrow(
      '-t 99999: "99999" is not a tunnel mapping',
    );
  });

  test("the client config's tunnels: key is checked, each problem placed at its line and column", () => {
    expect(config('tunnels:\n  web: ["3000", 8080]\n').data.tunnels).toEqual({ web: ["3000", 8080] });
    expect(() => config('tunnels:\n  web:\n    - "3000"\n    - "80:70000"\n')).toThrow(
      /config\.yaml:4:7: tunnels\.web\.1: not a tunnel mapping: .*\(got "80:70000"\)/,
    );
  });
});

describe("tunnel state file", () => {
  test("written whole (temp + rename), read back; many writers at once lose no entry", async () => {
    const cfg = config();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        withTunnelState(cfg, async (state) => {
          // Yield inside the lock: a writer that did not wait its turn would overwrite the others.
          await new Promise((r) => setTimeout(r, 1));
          state.tunnels.push(entry("s", 10_000 + i));
        }),
      ),
    );
    expect(
      readTunnelState(cfg)
        .tunnels.map((t) => t.local)
        .sort(),
    ).toEqual(Array.from({ length: 20 }, (_, i) => 10_000 + i));
    expect(existsSync(join(cfg.dir, "tunnels", "state.lock"))).toBe(false);
    expect(tunnelsRecordedFor(cfg.dir, "s")).toBe(true);
    expect(tunnelsRecordedFor(cfg.dir, "other")).toBe(false);
  });

  test("a lock left by a process that died is taken over", async () => {
    const cfg = config();
    mkdirSync(join(cfg.dir, "tunnels"), { recursive: true });
    writeFileSync(join(cfg.dir, "tunnels", "state.lock"), `${deadPid()}\n`);
    await withTunnelState(cfg, (state) => {
      state.tunnels.push(entry("s", 4000));
    });
    expect(readTunnelState(cfg).tunnels).toHaveLength(1);
  });

  test("a lock held by a live process is waited for", async () => {
    const cfg = config();
    const lock = join(cfg.dir, "tunnels", "state.lock");
    mkdirSync(join(cfg.dir, "tunnels"), { recursive: true });
    // Held by this (live) process, as another command's would be; released a little later.
    writeFileSync(lock, `${process.pid}\n`);
    let ran = false;
    const waiting = withTunnelState(cfg, () => {
      ran = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(ran).toBe(false);
    rmSync(lock);
    await waiting;
    expect(ran).toBe(true);
  });

  test("no file yet reads as no tunnels; a damaged one is refused, naming it", () => {
    const cfg = config();
    expect(readTunnelState(cfg)).toEqual({ version: 1, tunnels: [] });
    mkdirSync(join(cfg.dir, "tunnels"), { recursive: true });
    writeFileSync(join(cfg.dir, "tunnels", "state.json"), "{not json");
    expect(() => readTunnelState(cfg)).toThrow(join(cfg.dir, "tunnels", "state.json"));
    expect(readFileSync(join(cfg.dir, "tunnels", "state.json"), "utf8")).toBe("{not json");
  });
});
