import { describe, expect, it } from "vitest";
import { renderServiceUnit, systemdWord } from "../../src/server/service-unit.js";

/** The unit's text: quoting systemd reads back as the same word, and the settings a stop and a crash depend on. */
describe("systemdWord", () => {
  it("leaves a plain path as it is", () => {
    expect(systemdWord("/usr/bin/node", { exec: true })).toBe("/usr/bin/node");
  });

  it("quotes spaces, escapes quotes and backslashes, doubles % always and $ on Exec lines", () => {
    expect(systemdWord('/srv/my conf/"a"\\b.yaml', { exec: true })).toBe('"/srv/my conf/\\"a\\"\\\\b.yaml"');
    expect(systemdWord("/srv/100%/$HOME", { exec: true })).toBe('"/srv/100%%/$$HOME"');
    expect(systemdWord("PATH=/opt/$x:/usr/bin", { exec: false })).toBe('"PATH=/opt/$x:/usr/bin"');
    expect(systemdWord("/a%b", { exec: false })).toBe("/a%%b");
  });

  it("refuses a line break, which no quoting can carry", () => {
    expect(() => systemdWord("/tmp/a\nExecStartPre=/bin/evil", { exec: true })).toThrow(/cannot be written/);
  });
});

describe("renderServiceUnit", () => {
  const unit = renderServiceUnit({
    node: "/usr/bin/node",
    script: "/opt/shed/dist/shed-server.mjs",
    config: "/etc/shed/server config.yaml",
    user: "dev",
    path: "/usr/local/bin:/usr/bin",
  });
  const lines = unit.split("\n");

  it("runs this shed-server with the config, as the user, restarting on failure only", () => {
    expect(lines).toContain(
      'ExecStart=/usr/bin/node /opt/shed/dist/shed-server.mjs serve --config "/etc/shed/server config.yaml"',
    );
    expect(lines).toContain("User=dev");
    expect(lines).toContain("Restart=on-failure");
    expect(lines).toContain("Environment=PATH=/usr/local/bin:/usr/bin");
    expect(lines).toContain("WantedBy=multi-user.target");
  });

  it("kills only the main process on stop, so QEMU in the unit's cgroup keeps running", () => {
    expect(lines).toContain("KillMode=process");
    expect(lines.filter((l) => l.startsWith("KillMode="))).toHaveLength(1);
  });

  it("without a config, serves with defaults", () => {
    const bare = renderServiceUnit({ node: "/n", script: "/s.mjs", config: undefined, user: "u", path: "/bin" });
    expect(bare).toContain("ExecStart=/n /s.mjs serve\n");
  });
});
