import { mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildQemuArgv } from "../../src/backends/qemu/qemu-argv.js";
import {
  buildVirtiofsdArgv,
  checkRecordedLocalDir,
  fuseOptValue,
  startVirtiofsd,
  VIRTIOFSD,
} from "../../src/backends/qemu/qemu-virtiofs.js";
import { createInstanceDir, instancePath } from "../../src/backends/vm/instance-dir.js";
import {
  type InstanceLocalDir,
  type InstanceMeta,
  readInstanceMeta,
  updateInstanceMeta,
  writeInstanceMeta,
} from "../../src/backends/vm/instance-meta.js";
import { instanceShed } from "../../src/backends/vm/instance-shed.js";
import { isAlive, killProcess } from "../../src/backends/vm/process.js";
import { tempDir } from "../helpers/cli.js";

/** An instance.json exactly as a server from before --local-dir on VMs wrote it. */
const OLD_FORMAT = `{
  "version": 1,
  "name": "old",
  "backend": "qemu",
  "image": "/var/lib/shed/vm-images/builds/shed-vm-x86_64-abc",
  "arch": "x86_64",
  "created_at": "2026-01-01T00:00:00.000Z",
  "display": "https://example.com/r.git",
  "server_id": "srv-1",
  "agent_transport": "tcp",
  "ports": { "exec": 40001, "control": 40002 },
  "hypervisor": null,
  "helpers": {},
  "memory_mib": 1024,
  "cpus": 2,
  "last_stop": "powerdown"
}
`;

function mustRead(dir: string): InstanceMeta {
  const meta = readInstanceMeta(dir);
  if (!meta) throw new Error(`no metadata in ${dir}`);
  return meta;
}

function identity(path: string): InstanceLocalDir {
  const st = statSync(path, { bigint: true });
  return { path, dev: String(st.dev), ino: String(st.ino) };
}

describe("instance metadata with a local dir", () => {
  it("an old file without local_dir still reads, as a shed without one", () => {
    const dir = createInstanceDir(tempDir("vfs-meta"), "old");
    writeFileSync(instancePath(dir, "meta"), OLD_FORMAT);
    const meta = mustRead(dir);
    expect(meta.local_dir).toBeUndefined();
    expect(meta.display).toBe("https://example.com/r.git");
    expect(instanceShed(meta, false, dir).local_dir).toBeUndefined();
  });

  it("records the checked directory and shows its path; a malformed one is refused", () => {
    const data = tempDir("vfs-meta");
    const dir = createInstanceDir(data, "old");
    writeFileSync(instancePath(dir, "meta"), OLD_FORMAT);
    const local = identity(data);
    updateInstanceMeta(dir, (m) => ({ ...m, local_dir: local }));
    const meta = mustRead(dir);
    expect(meta.local_dir).toEqual(local);
    expect(instanceShed(meta, true, dir).local_dir).toBe(data);
    expect(() => writeInstanceMeta(dir, { ...meta, local_dir: { ...local, ino: "-1" } })).toThrow(/local_dir\.ino/);
    expect(() => writeInstanceMeta(dir, { ...meta, local_dir: { ...local, path: "rel" } })).toThrow(/local_dir\.path/);
  });
});

describe("virtiofs argv", () => {
  it("QEMU gets shared memfd RAM of the VM's size and a vhost-user-fs device on the socket", () => {
    const base = {
      name: "d",
      accel: "tcg" as const,
      memoryMiB: 768,
      cpus: 1,
      kernel: "/k",
      initrd: "/i",
      cmdline: "c",
      rootDisk: "/r",
      configDisk: "/c",
      serialLog: "/s",
      qmpSocket: "/q",
      pidFile: "/p",
      netdev: "user,id=net0",
      mac: "52:54:00:00:00:01",
    };
    expect(buildQemuArgv(base).join(" ")).not.toMatch(/memory-backend|vhost-user/);
    const argv = buildQemuArgv({ ...base, sharedDir: { socket: "/d/a,b/virtiofs.sock", tag: "workspace" } });
    const valuesOf = (flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
    expect(valuesOf("-machine")).toEqual(["q35,memory-backend=mem"]);
    expect(valuesOf("-object")).toContain("memory-backend-memfd,id=mem,size=768M,share=on");
    expect(valuesOf("-chardev")).toContain("socket,id=fs0,path=/d/a,,b/virtiofs.sock");
    expect(valuesOf("-device")).toContain("vhost-user-fs-pci,chardev=fs0,tag=workspace");
  });

  it("virtiofsd exports exactly the directory, sandboxed, a comma or backslash in its path escaped", () => {
    expect(fuseOptValue("/a,b\\c")).toBe("/a\\,b\\\\c");
    expect(buildVirtiofsdArgv({ source: "/p,x", socket: "/i/virtiofs.sock" })).toEqual([
      VIRTIOFSD,
      "--socket-path=/i/virtiofs.sock",
      "-o",
      "source=/p\\,x",
      "-o",
      "sandbox=namespace",
      "-o",
      "cache=auto",
      "-o",
      "timeout=0",
    ]);
  });
});

describe("virtiofsd for real (no VM)", () => {
  it("starts recorded as the fs helper, its socket 0600, and ends on SIGTERM", async () => {
    const data = tempDir("vfs-run");
    const dir = createInstanceDir(data, "run");
    writeFileSync(instancePath(dir, "meta"), OLD_FORMAT.replace('"old"', '"run"'));
    const shared = join(data, "a,b");
    mkdirSync(shared);
    const fs = await startVirtiofsd({
      instanceDir: dir,
      dir: identity(shared),
      socket: instancePath(dir, "fsSocket"),
      log: instancePath(dir, "fsLog"),
    });
    try {
      expect(isAlive(fs)).toBe(true);
      expect(readInstanceMeta(dir)?.helpers.fs).toEqual(fs);
      expect(statSync(instancePath(dir, "fsSocket")).mode & 0o777).toBe(0o600);
    } finally {
      expect(await killProcess(fs, 2_000)).not.toBe("not-running");
    }
    expect(isAlive(fs)).toBe(false);
  });

  it("a directory replaced since it was checked, or gone, is refused before virtiofsd starts", async () => {
    const data = tempDir("vfs-run");
    const dir = createInstanceDir(data, "run");
    writeFileSync(instancePath(dir, "meta"), OLD_FORMAT.replace('"old"', '"run"'));
    const shared = join(data, "proj");
    mkdirSync(shared);
    const checked = identity(shared);
    checkRecordedLocalDir(checked);
    renameSync(shared, join(data, "proj-old"));
    mkdirSync(shared);
    const start = () =>
      startVirtiofsd({
        instanceDir: dir,
        dir: checked,
        socket: instancePath(dir, "fsSocket"),
        log: instancePath(dir, "fsLog"),
      });
    await expect(start()).rejects.toMatchObject({ code: "LOCAL_DIR_REFUSED" });
    renameSync(shared, join(data, "other"));
    await expect(start()).rejects.toMatchObject({ code: "LOCAL_DIR_NOT_FOUND" });
    expect(readInstanceMeta(dir)?.helpers).toEqual({});
  });
});
