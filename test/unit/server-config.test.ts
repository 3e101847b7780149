import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readEnvFile } from "../../src/config/env-file.js";
import { loadServerConfig } from "../../src/config/server-config.js";
import { ShedError } from "../../src/core/errors.js";

function write(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "shed-cfg-"));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): ShedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error("expected an error");
}

describe("server config", () => {
  it("an empty config gets the documented defaults", () => {
    const cfg = loadServerConfig(write("server.yaml", ""));
    expect(cfg).toMatchObject({
      httpPort: 8080,
      sshPort: 2222,
      bind: "127.0.0.1",
      enabledBackends: ["docker"],
      defaultBackend: "docker",
      defaultImage: "shed-base:latest",
      stopTimeoutMs: 10_000,
      credentials: [],
    });
  });

  it("relative paths resolve against the config's folder and ~ against home", () => {
    const file = write(
      "server.yaml",
      "data_dir: data\nenv_file: ~/env\ncredentials:\n  gh: {source: ./gh, target: /home/shed/.config/gh, readonly: true}\n",
    );
    const cfg = loadServerConfig(file);
    const dir = join(file, "..");
    expect(cfg.dataDir).toBe(join(dir, "data"));
    expect(cfg.authorizedKeysFile).toBe(join(dir, "data", "authorized_keys"));
    expect(cfg.credentials).toEqual([
      { name: "gh", source: join(dir, "gh"), target: "/home/shed/.config/gh", readonly: true, exclude: [] },
    ]);
    expect(cfg.envFile).toMatch(/\/env$/);
  });

  it("reports every problem with file:line:col, the field and the value", () => {
    const file = write(
      "server.yaml",
      [
        "http_port: 99999",
        "bogus: 1",
        "enabled_backends: [docker, kvm]",
        "stop_timeout: 10x",
        "credentials:",
        "  gh:",
        "    source: /x",
        "    target: relative",
      ].join("\n"),
    );
    const e = errorOf(() => loadServerConfig(file));
    expect(e.code).toBe("INVALID_CONFIG");
    expect(e.message).toContain(`${file}:1:12: http_port:`);
    expect(e.message).toContain("(got 99999)");
    expect(e.message).toContain(`${file}:2:1: bogus: unknown field`);
    expect(e.message).toContain(`${file}:3:28: enabled_backends.1:`);
    expect(e.message).toContain(`${file}:4:15: stop_timeout: not a duration`);
    expect(e.message).toContain(`${file}:8:13: credentials.gh.target: target must be an absolute path`);
  });

  it("a YAML syntax error names the line", () => {
    const file = write("server.yaml", "name: a\nenabled_backends: [docker\n");
    const e = errorOf(() => loadServerConfig(file));
    expect(e.message).toMatch(new RegExp(`${file}:\\d+:\\d+: YAML syntax`));
  });

  it("docker_host is a unix socket URL; anything else names the field and the way for other engines", () => {
    expect(loadServerConfig(write("server.yaml", "docker_host: unix:///tmp/e/docker.sock\n")).dockerSocket).toBe(
      "/tmp/e/docker.sock",
    );
    expect(loadServerConfig(write("server.yaml", "")).dockerSocket).toBeUndefined();
    const file = write("server.yaml", "docker_host: tcp://10.0.0.1:2375\n");
    expect(errorOf(() => loadServerConfig(file)).message).toContain(
      `${file}:1:14: docker_host: write unix:///path/to/docker.sock (for an engine over TCP or SSH, set DOCKER_HOST`,
    );
  });

  it("default_backend must be enabled", () => {
    const file = write("server.yaml", "enabled_backends: [docker]\ndefault_backend: vz\n");
    expect(errorOf(() => loadServerConfig(file)).message).toContain(
      "default_backend: default_backend must be one of enabled_backends",
    );
  });
});

describe("Firecracker and VZ keys", () => {
  it("default to shedbr0 on 172.30.0.0/24 and the binaries on PATH", () => {
    const cfg = loadServerConfig(write("server.yaml", ""));
    expect(cfg.vm).toMatchObject({
      bridge: "shedbr0",
      subnet: "172.30.0.0/24",
      firecrackerBinary: "firecracker",
      vfkitBinary: "vfkit",
    });
  });

  it("take set values; a binary given as a path resolves against the config's folder", () => {
    const file = write(
      "server.yaml",
      "vm_bridge: br-shed.1\nvm_subnet: 10.200.0.0/16\nfirecracker_binary: bin/fc\nvfkit_binary: /opt/vfkit\n",
    );
    expect(loadServerConfig(file).vm).toMatchObject({
      bridge: "br-shed.1",
      subnet: "10.200.0.0/16",
      firecrackerBinary: join(file, "..", "bin", "fc"),
      vfkitBinary: "/opt/vfkit",
    });
  });

  it.each([
    ["vm_bridge: a-name-of-16chars", "vm_bridge: a Linux interface name", "a-name-of-16chars"],
    ["vm_bridge: 'br 0'", "vm_bridge: a Linux interface name", "br 0"],
    ["vm_bridge: '..'", "vm_bridge: a Linux interface name", ".."],
    ["vm_subnet: 172.30.0.0", "vm_subnet: not an IPv4 CIDR", "172.30.0.0"],
    ["vm_subnet: 172.30.0.0/30", "vm_subnet: prefix /30 is out of range: use /16 to /29", "172.30.0.0/30"],
    ["vm_subnet: 10.0.0.0/8", "vm_subnet: prefix /8 is out of range", "10.0.0.0/8"],
    [
      "vm_subnet: 172.30.0.1/24",
      "vm_subnet: 172.30.0.1 has host bits set for /24; the network is 172.30.0.0/24",
      "172.30.0.1/24",
    ],
    ["vm_subnet: 172.300.0.0/24", "vm_subnet: 172.300.0.0 is not an IPv4 address", "172.300.0.0/24"],
    ["vm_subnet: 010.1.0.0/24", "vm_subnet: 010.1.0.0 is not an IPv4 address", "010.1.0.0/24"],
    ["firecracker_binary: ''", "firecracker_binary:", ""],
  ])("%s is refused with file:line, the field and the value", (line, message, value) => {
    const file = write("server.yaml", `name: x\n${line}\n`);
    const e = errorOf(() => loadServerConfig(file));
    expect(e.code).toBe("INVALID_CONFIG");
    expect(e.message).toMatch(new RegExp(`${file}:2:\\d+: `));
    expect(e.message).toContain(message);
    expect(e.message).toContain(`(got ${JSON.stringify(value)})`);
  });
});

describe("env_file", () => {
  it("reads KEY=VALUE lines, comments and quotes", () => {
    const file = write("env", "# comment\nA=1\nexport B='two words'\nC=\"x=y\"\n\n");
    expect(readEnvFile(file)).toEqual({ A: "1", B: "two words", C: "x=y" });
  });
  it("a bad line is reported with file:line", () => {
    const file = write("env", "A=1\nnot a var\n");
    expect(errorOf(() => readEnvFile(file)).message).toContain(`${file}:2: expected KEY=VALUE`);
  });
});
