import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseProvision, provisionJsonSchema } from "../../src/config/provision-file.js";

describe("provision.yaml parsing", () => {
  it("accepts the seed's example", () => {
    const { config, problems } = parseProvision(
      'hooks:\n  install: scripts/provision/install.sh\n  startup: scripts/provision/startup.sh\n  shutdown: scripts/provision/shutdown.sh\nenv:\n  MY_VAR: "my_value"\n',
    );
    expect(problems).toEqual([]);
    expect(config).toEqual({
      hooks: {
        install: "scripts/provision/install.sh",
        startup: "scripts/provision/startup.sh",
        shutdown: "scripts/provision/shutdown.sh",
      },
      env: { MY_VAR: "my_value" },
      timeoutMs: 30 * 60_000,
    });
  });

  it("refuses only the parts with problems, each reported at its line and column", () => {
    const text = [
      "hooks:",
      "  install: ../outside.sh",
      "  startup: ok.sh",
      "  shutdown: /abs/path.sh",
      "env:",
      "  GOOD: 1",
      "  bad-name: x",
      "colour: red",
      "timeout: 90s",
    ].join("\n");
    const { config, problems } = parseProvision(text);
    expect(config).toEqual({ hooks: { startup: "ok.sh" }, env: { GOOD: "1" }, timeoutMs: 90_000 });
    const where = problems.map((p) => `${p.line}:${p.col} ${p.path}`);
    expect(where).toEqual(["2:12 hooks.install", "4:13 hooks.shutdown", "7:3 env.bad-name", "8:1 colour"]);
    expect(problems[0]?.message).toMatch(/leaves the workspace/);
    expect(problems[2]?.message).toMatch(/not a valid environment variable name/);
    expect(problems[3]?.message).toBe("unknown field");
  });

  it("a YAML syntax error refuses the whole file", () => {
    const { config, problems } = parseProvision("hooks:\n  install: [a\n");
    expect(config.hooks).toEqual({});
    expect(problems[0]?.message).toMatch(/^YAML syntax/);
    expect(problems[0]?.line).toBeGreaterThan(1);
  });

  it("a wrong type is reported with the value", () => {
    const { problems } = parseProvision("hooks:\n  install: 42\ntimeout: soon\n");
    expect(problems.map((p) => p.path)).toEqual(["hooks.install", "timeout"]);
    expect(problems[1]?.message).toContain('(got "soon")');
  });

  it("the published JSON Schema is generated from the same schema", () => {
    const published = JSON.parse(readFileSync(new URL("../../schemas/provision.schema.json", import.meta.url), "utf8"));
    expect(published).toEqual(provisionJsonSchema());
    expect(published.additionalProperties).toBe(false);
    expect(Object.keys(published.properties)).toEqual(["hooks", "env", "timeout"]);
  });
});
