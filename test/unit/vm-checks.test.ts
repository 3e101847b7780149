import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import {
  checkFirecrackerHost,
  type FirecrackerHostProbe,
  kvmStateOf,
  linuxBridgeExists,
} from "../../src/backends/firecracker/firecracker-check.js";
import { checkVzHost } from "../../src/backends/vz/vz-check.js";
import { ShedError } from "../../src/core/errors.js";
import { tempDir } from "../helpers/cli.js";

function refusal(fn: () => unknown): ShedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ShedError);
    return err as ShedError;
  }
  throw new Error("expected a refusal");
}

describe("on this machine, with the real host's defaults", () => {
  it("the firecracker check fails naming /dev/kvm (there is none here) and how to get it", () => {
    // A fact about this machine the assertion depends on, checked rather than assumed.
    expect(existsSync("/dev/kvm")).toBe(false);
    const e = refusal(() => checkFirecrackerHost({ firecrackerBinary: "firecracker", bridge: "shedbr0" }));
    expect(e.code).toBe("BACKEND_NOT_ENABLED");
    expect(e.message).toContain("/dev/kvm does not exist");
    expect(e.hint).toContain("modprobe kvm_intel");
    expect(e.details?.missing).toContain("/dev/kvm");
  });

  it("the vz check fails naming macOS and what this host is", () => {
    const e = refusal(() => checkVzHost({ vfkitBinary: "vfkit" }));
    expect(e.code).toBe("BACKEND_NOT_ENABLED");
    expect(e.message).toBe(`the vz backend needs macOS on Apple silicon; this is ${process.platform}/${process.arch}`);
    expect(e.hint).toContain("--backend qemu");
  });
});

describe("checkFirecrackerHost, each piece on its own", () => {
  const allThere: FirecrackerHostProbe = {
    firecrackerBinary: "firecracker",
    kvmPath: "/dev/kvm",
    kvmState: () => "ok",
    which: (b) => (b === "firecracker" ? "/usr/local/bin/firecracker" : undefined),
    bridge: "shedbr0",
    bridgeExists: (n) => n === "shedbr0",
  };

  it("passes when everything is there", () => {
    expect(() => checkFirecrackerHost(allThere)).not.toThrow();
  });

  it("says when the KVM device is missing, or there but not read/writable", () => {
    const missing = refusal(() =>
      checkFirecrackerHost({ ...allThere, kvmPath: "/dev/kvm0", kvmState: () => "missing" }),
    );
    expect(missing.message).toBe(
      "the firecracker backend cannot run on this host: /dev/kvm0 does not exist (no KVM on this host)",
    );
    expect(missing.hint).toContain("KVM-capable Linux host");
    expect(missing.hint).toContain("`modprobe kvm_amd`");
    const denied = refusal(() => checkFirecrackerHost({ ...allThere, kvmState: () => "no-access" }));
    expect(denied.message).toContain("/dev/kvm is not readable and writable by this user");
    expect(denied.hint).toContain("kvm");
    expect(denied.hint).toContain("usermod -aG kvm");
    expect(denied.details).toEqual({ missing: ["/dev/kvm"] });
  });

  it("says when the firecracker binary is missing, by name or by path", () => {
    const e = refusal(() => checkFirecrackerHost({ ...allThere, which: () => undefined }));
    expect(e.message).toContain("the firecracker binary: firecracker is not on the server's PATH");
    expect(e.hint).toContain("github.com/firecracker-microvm/firecracker/releases");
    expect(e.hint).toContain("firecracker_binary");
    expect(e.details).toEqual({ missing: ["firecracker"] });

    const dir = tempDir("vm-checks");
    const notExec = join(dir, "firecracker");
    writeFileSync(notExec, "#!/bin/sh\n");
    chmodSync(notExec, 0o644);
    // Even root may not execute a file without an x bit, so this holds for the tests' root too.
    expect(refusal(() => checkFirecrackerHost({ ...allThere, firecrackerBinary: notExec })).message).toContain(
      `${notExec} is not an executable file`,
    );
    chmodSync(notExec, 0o755);
    expect(() =>
      checkFirecrackerHost({ ...allThere, firecrackerBinary: notExec, which: () => undefined }),
    ).not.toThrow();
  });

  it("says when the bridge is missing, pointing at shed-server setup", () => {
    const e = refusal(() => checkFirecrackerHost({ ...allThere, bridge: "shedbr9" }));
    expect(e.message).toContain("the bridge shedbr9 does not exist");
    expect(e.hint).toContain("`sudo shed-server setup`");
    expect(e.details).toEqual({ missing: ["shedbr9"] });
  });

  it("lists every missing piece in one error", () => {
    const e = refusal(() =>
      checkFirecrackerHost({
        ...allThere,
        kvmState: () => "missing",
        which: () => undefined,
        bridgeExists: () => false,
      }),
    );
    expect(e.details).toEqual({ missing: ["/dev/kvm", "firecracker", "shedbr0"] });
    expect(e.hint?.split("; ")).toHaveLength(3);
  });

  it("looks a bare binary name up on the real PATH by default", () => {
    const dir = tempDir("vm-checks");
    const bin = join(dir, "firecracker");
    writeFileSync(bin, "#!/bin/sh\n", { mode: 0o755 });
    const probe = {
      firecrackerBinary: "firecracker",
      kvmState: () => "ok" as const,
      bridge: "b",
      bridgeExists: () => true,
    };
    vi.stubEnv("PATH", "/nonexistent");
    try {
      expect(refusal(() => checkFirecrackerHost(probe)).details).toEqual({ missing: ["firecracker"] });
      vi.stubEnv("PATH", `/nonexistent:${dir}`);
      expect(() => checkFirecrackerHost(probe)).not.toThrow();
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("reads the real host's KVM device and bridges by default", () => {
    const dir = tempDir("vm-checks");
    const dev = join(dir, "kvm");
    writeFileSync(dev, "");
    expect(kvmStateOf(dev)).toBe("ok");
    expect(kvmStateOf(join(dir, "nothing"))).toBe("missing");
    // lo is an interface but not a bridge; a name with a '/' never reaches the filesystem.
    expect(existsSync("/sys/class/net/lo")).toBe(true);
    expect(linuxBridgeExists("lo")).toBe(false);
    expect(linuxBridgeExists("../lo")).toBe(false);
  });
});

describe("checkVzHost, each piece on its own", () => {
  const mac = { platform: "darwin" as const, arch: "arm64", which: () => "/opt/homebrew/bin/vfkit" };

  it("passes on macOS on Apple silicon with vfkit", () => {
    expect(() => checkVzHost({ vfkitBinary: "vfkit", ...mac })).not.toThrow();
  });

  it("refuses an Intel Mac and Linux on arm64", () => {
    expect(refusal(() => checkVzHost({ vfkitBinary: "vfkit", ...mac, arch: "x64" })).message).toContain(
      "this is darwin/x64",
    );
    expect(refusal(() => checkVzHost({ vfkitBinary: "vfkit", ...mac, platform: "linux" })).message).toContain(
      "this is linux/arm64",
    );
  });

  it("says when vfkit is missing and how to get it", () => {
    const e = refusal(() => checkVzHost({ vfkitBinary: "vfkit", ...mac, which: () => undefined }));
    expect(e.message).toBe("the vz backend needs vfkit, and vfkit is not on the server's PATH");
    expect(e.hint).toContain("`brew install vfkit`");
    expect(e.hint).toContain("vfkit_binary");
    expect(refusal(() => checkVzHost({ vfkitBinary: "/nowhere/vfkit", ...mac })).message).toContain(
      "/nowhere/vfkit is not an executable file",
    );
  });
});
