import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROVISION_MAX_BYTES, parseProvision } from "../../src/config/provision-file.js";
import { loadServerConfig } from "../../src/config/server-config.js";
import { MAX_DURATION_MS, parseDuration, tryParseDuration } from "../../src/core/duration.js";
import { ShedError } from "../../src/core/errors.js";
import { tryParseSize } from "../../src/core/size.js";
import { createShedRequestSchema } from "../../src/protocol/api-types.js";

/** The parsing side of issue 9's bounded input: durations, sizes, provision.yaml's cap, aliases and hook paths. */

describe("durations", () => {
  it("accept up to 7 days (with a d unit) and stay inside Node's timer range", () => {
    expect(tryParseDuration("7d")).toBe(7 * 86_400_000);
    expect(tryParseDuration("168h")).toBe(MAX_DURATION_MS);
    expect(tryParseDuration("1.5d")).toBe(36 * 3_600_000);
    expect(MAX_DURATION_MS).toBeLessThan(2 ** 31 - 1);
  });

  it("refuse more, and say it is the maximum, not a malformed value", () => {
    for (const text of ["169h", "600h", "8d", "99999999999999999999d"]) expect(tryParseDuration(text)).toBeUndefined();
    expect(() => parseDuration("600h", "--timeout")).toThrow(/--timeout: "600h" is longer than the maximum of 7d/);
    expect(() => parseDuration("soon", "--timeout")).toThrow(/--timeout: "soon" is not a duration/);
    const err = (() => {
      try {
        parseDuration("x".repeat(10_000), "--timeout");
      } catch (e) {
        return e as ShedError;
      }
    })();
    expect(err).toBeInstanceOf(ShedError);
    expect(err?.message.length).toBeLessThan(300);
  });

  it("the API's timeout field names itself and the maximum", () => {
    const r = createShedRequestSchema.safeParse({ name: "a", timeout: "600h" });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]).toMatchObject({ path: ["timeout"], message: "longer than the maximum of 7d (168h)" });
    expect(createShedRequestSchema.safeParse({ name: "a", timeout: "7d" }).success).toBe(true);
  });

  it("stop_timeout over the maximum is a config error at its line", () => {
    const file = join(mkdtempSync(join(tmpdir(), "shed-bounded-")), "server.yaml");
    writeFileSync(file, "name: x\nstop_timeout: 8d\n");
    expect(() => loadServerConfig(file)).toThrow(`${file}:2:15: stop_timeout: longer than the maximum of 7d`);
  });
});

describe("sizes in the server config", () => {
  it("parse byte counts and binary units; bundle and hook log caps have documented defaults", () => {
    expect(tryParseSize(4096)).toBe(4096);
    expect(tryParseSize("64KiB")).toBe(65_536);
    expect(tryParseSize("2GiB")).toBe(2 * 1024 ** 3);
    expect(tryParseSize("2 GB")).toBeUndefined();
    expect(tryParseSize(-1)).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), "shed-bounded-"));
    writeFileSync(join(dir, "a.yaml"), "name: x\n");
    expect(loadServerConfig(join(dir, "a.yaml"))).toMatchObject({
      maxBundleBytes: 2 * 1024 ** 3,
      bundleMaxAgeMs: 10 * 60_000,
      hookLogMaxBytes: 64 * 1024 ** 2,
    });
    writeFileSync(join(dir, "b.yaml"), "max_bundle_size: lots\nhook_log_max_size: 10\n");
    const file = join(dir, "b.yaml");
    expect(() => loadServerConfig(file)).toThrow(`${file}:1:18: max_bundle_size: not a size`);
    expect(() => loadServerConfig(file)).toThrow(`${file}:2:20: hook_log_max_size: too small: at least 4 KiB`);
  });
});

describe("provision.yaml bounds", () => {
  it("a text over 1 MiB is one problem naming the cap, and nothing of it applies", () => {
    const text = `hooks:\n  install: a.sh\n#${"x".repeat(PROVISION_MAX_BYTES)}\n`;
    const { config, problems } = parseProvision(text);
    expect(config.hooks).toEqual({});
    expect(problems).toEqual([
      expect.objectContaining({ line: 1, col: 1, message: expect.stringContaining("larger than 1 MiB") }),
    ]);
  });

  it("an alias bomb, or more aliases than the parser allows, is a problem at a line, not a crash", () => {
    const row = (a: string, of: string) => `${a}: &${a} [${Array(9).fill(of).join(", ")}]`;
    const bomb = ["hooks:", "  install: a.sh", row("a", "x"), row("b", "*a"), row("c", "*b"), row("d", "*c")].join(
      "\n",
    );
    const { config, problems } = parseProvision(bomb);
    expect(config.hooks).toEqual({});
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: ".shed/provision.yaml", line: 4 });
    expect(problems[0]?.message).toMatch(/alias/i);

    const many = `x: &x 1\n${Array.from({ length: 150 }, (_, i) => `k${i}: *x`).join("\n")}\n`;
    expect(parseProvision(many).problems[0]).toMatchObject({ line: 2 });
  });

  it("hook paths are checked by path segment: ..tools/x is inside the workspace, ../x and a/../../x are not", () => {
    const ok = parseProvision("hooks:\n  install: ..tools/x\n  startup: a/..b/../c.sh\n  shutdown: ...sh\n");
    expect(ok.problems).toEqual([]);
    expect(ok.config.hooks).toEqual({ install: "..tools/x", startup: "a/..b/../c.sh", shutdown: "...sh" });
    const bad = parseProvision("hooks:\n  install: ../x\n  startup: a/../../x\n  shutdown: ..\n");
    expect(bad.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'hooks.install: leaves the workspace (got "../x")',
      'hooks.startup: leaves the workspace (got "a/../../x")',
      'hooks.shutdown: leaves the workspace (got "..")',
    ]);
  });

  it("timeout: 600h is refused at its line; 7d is taken", () => {
    const long = parseProvision("timeout: 600h\n");
    expect(long.problems.map((p) => `${p.line}:${p.col} ${p.message}`)).toEqual([
      '1:10 longer than the maximum of 7d (168h) (got "600h")',
    ]);
    expect(long.config.timeoutMs).toBe(30 * 60_000);
    expect(parseProvision("timeout: 7d\n").config.timeoutMs).toBe(7 * 86_400_000);
  });
});
