// Time budget: about 1-2 minutes on 2 cores. The migration and prune cases use small hand-made
// image directories (qemu-img is real, the script's migration and prune are real: seconds). The
// rebuild case runs scripts/build-vm-image.sh for real three times into a temp SHED_VM_IMAGES
// with a copied agent; the Docker image (the slow part) must already be built, as setup.sh does,
// so each build is only the export + mkfs (~15-30 s).
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QemuMachine } from "../../src/backends/qemu/qemu-machine.js";
import { pinLegacyImage } from "../../src/backends/vm/image-pin.js";
import { type InstanceMeta, readInstanceMeta, writeInstanceMeta } from "../../src/backends/vm/instance-meta.js";
import { resolveVmImage } from "../../src/backends/vm/vm-image.js";
import { REPO_ROOT } from "../helpers/cli.js";

const ARCH = "x86_64";
const BUILD_TIMEOUT = 240_000;
let tmp: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  tmp = mkdtempSync(join("/tmp", "shed-vmb-"));
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function buildScript(imagesDir: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync("bash", [join(REPO_ROOT, "scripts/build-vm-image.sh"), ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, SHED_VM_IMAGES: imagesDir, ...env },
    timeout: BUILD_TIMEOUT,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function backingOf(overlay: string): string {
  const info = JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", overlay], { encoding: "utf8" }));
  return info["backing-filename"];
}

/** qemu-io's `read -P` checks every byte of the range against the pattern. */
function reads(overlay: string, pattern: number, offset: string, length: string): boolean {
  const out = execFileSync(
    "qemu-io",
    ["-f", "qcow2", "-r", "-U", "-c", `read -P ${pattern} ${offset} ${length}`, overlay],
    {
      encoding: "utf8",
    },
  );
  return !/verification failed|error/i.test(out);
}

/** A small hand-made image directory: rootfs.ext4 filled with one byte, dummy kernel files. */
function fakeImageDir(dir: string, fill: number, recipe: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "rootfs.ext4"), Buffer.alloc(4 << 20, fill));
  writeFileSync(join(dir, "vmlinuz"), "kernel");
  writeFileSync(join(dir, "initrd.img"), "initrd");
  writeFileSync(join(dir, "manifest.json"), `${JSON.stringify({ arch: ARCH, recipe, files: {} }, null, 2)}\n`);
}

function legacyMeta(name: string, image: string): InstanceMeta {
  return {
    version: 1,
    name,
    backend: "qemu",
    image,
    arch: ARCH,
    created_at: "2024-01-01T00:00:00.000Z",
    server_id: "test-server",
    agent_transport: "tcp",
    ports: { exec: 40001, control: 40002 },
    hypervisor: null,
    helpers: {},
    memory_mib: 512,
    cpus: 1,
  };
}

describe.sequential("VM image builds: migration, pinning and prune (hand-made images)", () => {
  let images: string;
  let dataDir: string;
  let overlay: string;
  let instDir: string;
  let legacyBuild: string;

  it("migrates the old layout (a real shed-vm-<arch> directory) to builds/ and a symlink; an old overlay still reads", () => {
    images = join(tmp, "images-a");
    dataDir = join(tmp, "data-a");
    const old = join(images, `shed-vm-${ARCH}`);
    fakeImageDir(old, 0x5a, "1111222233334444");
    const inode = statSync(join(old, "rootfs.ext4")).ino;
    // A shed made by the previous backend: backing file and metadata name the old path.
    instDir = join(dataDir, "vm", "old");
    mkdirSync(instDir, { recursive: true, mode: 0o700 });
    overlay = join(instDir, "root.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", join(old, "rootfs.ext4"), overlay]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xc3 1M 64k", overlay]);
    writeInstanceMeta(instDir, legacyMeta("old", old));

    const r = buildScript(images, ["--list", dataDir]);
    expect(r.status, r.out).toBe(0);
    legacyBuild = join(images, "builds", `shed-vm-${ARCH}-1111222233334444`);
    expect(lstatSync(old).isSymbolicLink()).toBe(true);
    expect(realpathSync(old)).toBe(legacyBuild);
    expect(statSync(join(legacyBuild, "rootfs.ext4")).ino).toBe(inode); // moved, not copied
    expect(readFileSync(`${old}.legacy`, "utf8").trim()).toBe(`builds/shed-vm-${ARCH}-1111222233334444`);
    expect(r.out).toContain(`used by ${overlay} (backing file)`);
    expect(r.out).toContain(`used by ${join(instDir, "instance.json")} (image)`);

    // The overlay still names the old path, which resolves: base and own blocks read as before.
    expect(backingOf(overlay)).toBe(join(old, "rootfs.ext4"));
    const chain = execFileSync("qemu-img", ["info", "-U", "--backing-chain", overlay], { encoding: "utf8" });
    expect(chain).toContain(`image: ${join(old, "rootfs.ext4")}`);
    expect(reads(overlay, 0x5a, "0", "1M")).toBe(true);
    expect(reads(overlay, 0xc3, "1M", "64k")).toBe(true);

    // A second run migrates nothing again.
    const again = buildScript(images, ["--list", dataDir]);
    expect(again.status, again.out).toBe(0);
    expect(again.out).not.toContain("migrated");
  });

  it("after a rebuild moved the symlink, the next start re-points the old overlay at its own build", async () => {
    // What a rebuild does: a new build directory, the symlink renamed over.
    const next = join(images, "builds", `shed-vm-${ARCH}-ffff000000000000`);
    fakeImageDir(next, 0x11, "ffff000000000000");
    symlinkSync(`builds/shed-vm-${ARCH}-ffff000000000000`, join(images, "tmp-link"));
    renameSync(join(images, "tmp-link"), join(images, `shed-vm-${ARCH}`));
    // The hazard: through the moved symlink the old overlay now reads the new build's blocks.
    expect(reads(overlay, 0x11, "0", "1M")).toBe(true);

    const meta = await pinLegacyImage(instDir, readInstanceMeta(instDir) as InstanceMeta);
    expect(meta.image).toBe(legacyBuild);
    expect(readInstanceMeta(instDir)?.image).toBe(legacyBuild);
    expect(backingOf(overlay)).toBe(join(legacyBuild, "rootfs.ext4"));
    expect(reads(overlay, 0x5a, "0", "1M")).toBe(true);
    expect(reads(overlay, 0xc3, "1M", "64k")).toBe(true);
    // Pinned metadata no longer names the symlink: a second call changes nothing.
    expect(await pinLegacyImage(instDir, meta)).toEqual(meta);
  });

  it("prune keeps the current build, referenced builds and open ones; removes the rest; refuses without data dirs", async () => {
    const b = (id: string) => join(images, "builds", `shed-vm-${ARCH}-${id}`);
    fakeImageDir(b("eeee000000000000"), 0x22, "eeee000000000000"); // unused
    fakeImageDir(b("dddd000000000000"), 0x33, "dddd000000000000"); // a kept disk's base
    fakeImageDir(b("cccc000000000000"), 0x44, "cccc000000000000"); // open in a process
    fakeImageDir(join(images, "builds", "shed-vm-arm64-bbbb000000000000"), 0x55, "bbbb000000000000"); // other arch
    mkdirSync(join(dataDir, "vm", "kept"), { recursive: true });
    const kept = join(dataDir, "vm", "kept", "gone-2024.qcow2");
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-F",
      "raw",
      "-b",
      join(b("dddd000000000000"), "rootfs.ext4"),
      kept,
    ]);
    const fd = openSync(join(b("cccc000000000000"), "rootfs.ext4"), "r");
    const holder = spawn("sleep", ["300"], { stdio: [fd, "ignore", "ignore"] });
    closeSync(fd); // only the child holds it now
    children.push(holder);

    const refused = buildScript(images, ["--prune"]);
    expect(refused.status).not.toBe(0);
    expect(refused.out).toContain("--prune needs the data_dir");
    const typo = buildScript(images, ["--prune", join(tmp, "no-such-data-dir")]);
    expect(typo.status).not.toBe(0);
    expect(typo.out).toContain("does not exist");
    expect(existsSync(b("eeee000000000000"))).toBe(true);

    const r = buildScript(images, ["--prune", dataDir]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`removed shed-vm-${ARCH}-eeee000000000000`);
    expect(existsSync(b("eeee000000000000"))).toBe(false);
    expect(existsSync(legacyBuild)).toBe(true); // the old shed's, after pinning
    expect(existsSync(b("ffff000000000000"))).toBe(true); // current
    expect(existsSync(b("dddd000000000000"))).toBe(true); // the kept disk's
    expect(r.out).toContain(`kept shed-vm-${ARCH}-dddd000000000000: used by ${kept} (backing file)`);
    expect(existsSync(b("cccc000000000000"))).toBe(true);
    expect(r.out).toContain(`kept shed-vm-${ARCH}-cccc000000000000: used by open in pid ${holder.pid}`);
    expect(existsSync(join(images, "builds", "shed-vm-arm64-bbbb000000000000"))).toBe(true);
    expect(reads(overlay, 0x5a, "0", "1M")).toBe(true);
    expect(reads(kept, 0x33, "0", "1M")).toBe(true);

    // Once nothing holds it, the process's build goes too.
    const exited = new Promise((done) => holder.once("exit", done));
    holder.kill("SIGKILL");
    await exited;
    const r2 = buildScript(images, ["--prune", dataDir]);
    expect(r2.status, r2.out).toBe(0);
    expect(existsSync(b("cccc000000000000"))).toBe(false);
  });
});

describe.sequential("VM image builds: real rebuilds (scripts/build-vm-image.sh)", () => {
  let images: string;
  let agentDir: string;
  let dataDir: string;
  let first: string;
  let second: string;
  const env = () => ({ SHED_VM_AGENT_DIR: agentDir, SHED_VM_FREE_MIB: "16" });
  const link = () => join(images, `shed-vm-${ARCH}`);

  it(
    "builds into an immutable builds/ directory behind the symlink; a second run is a no-op",
    () => {
      images = join(tmp, "images-b");
      agentDir = join(tmp, "agent");
      dataDir = join(tmp, "data-b");
      mkdirSync(dataDir);
      cpSync(join(REPO_ROOT, "dist/agent"), agentDir, { recursive: true });
      const r = buildScript(images, [], env());
      expect(r.status, r.out).toBe(0);
      expect(r.out).toContain(`image shed-vm-rootfs:${ARCH} is up to date`); // the Docker part cached
      expect(lstatSync(link()).isSymbolicLink()).toBe(true);
      first = realpathSync(link());
      const manifest = JSON.parse(readFileSync(join(first, "manifest.json"), "utf8"));
      expect(readlinkSync(link())).toBe(`builds/shed-vm-${ARCH}-${manifest.build}`);
      expect(manifest.build).toMatch(/^[0-9a-f]{16}$/);
      expect(statSync(join(first, "rootfs.ext4")).mode & 0o222).toBe(0);

      const again = buildScript(images, [], env());
      expect(again.status, again.out).toBe(0);
      expect(again.out).toContain("is up to date");
      expect(realpathSync(link())).toBe(first);
    },
    BUILD_TIMEOUT,
  );

  it(
    "a rebuild with another agent makes a new build and moves the symlink; a shed made before keeps its base",
    async () => {
      // The backend resolves the symlink at create: backing file and metadata name the build.
      const image = resolveVmImage(images, ARCH);
      expect(image.dir).toBe(first);
      const m = await QemuMachine.create({ dataDir, name: "early", serverId: "test-server", image });
      const overlay = join(m.dir, "root.qcow2");
      expect(backingOf(overlay)).toBe(join(first, "rootfs.ext4"));
      expect(m.meta().image).toBe(first);
      const before = statSync(join(first, "rootfs.ext4"));

      writeFileSync(join(agentDir, "changed.txt"), "a new agent\n");
      const r = buildScript(images, [], env());
      expect(r.status, r.out).toBe(0);
      expect(r.out).toContain(`image shed-vm-rootfs:${ARCH} is up to date`);
      second = realpathSync(link());
      expect(second).not.toBe(first);

      // The first build is untouched, and the overlay still reads it, not the new one.
      const after = statSync(join(first, "rootfs.ext4"));
      expect([after.ino, after.size, after.mtimeMs]).toEqual([before.ino, before.size, before.mtimeMs]);
      expect(backingOf(overlay)).toBe(join(first, "rootfs.ext4"));
      expect(spawnSync("qemu-img", ["compare", "-U", "-q", overlay, join(first, "rootfs.ext4")]).status).toBe(0);
      expect(spawnSync("qemu-img", ["compare", "-U", "-q", overlay, join(second, "rootfs.ext4")]).status).toBe(1);
      expect(JSON.parse(readFileSync(join(second, "manifest.json"), "utf8")).recipe).not.toBe(
        JSON.parse(readFileSync(join(first, "manifest.json"), "utf8")).recipe,
      );

      // The agent change undone: the script points back at the first build instead of building.
      rmSync(join(agentDir, "changed.txt"));
      const back = buildScript(images, [], env());
      expect(back.status, back.out).toBe(0);
      expect(back.out).toContain("built before with this recipe");
      expect(realpathSync(link())).toBe(first);

      // Prune: the second build is neither current nor used by a shed.
      const list = buildScript(images, ["--list", dataDir]);
      expect(list.out).toContain(`used by ${overlay} (backing file)`);
      const p = buildScript(images, ["--prune", dataDir]);
      expect(p.status, p.out).toBe(0);
      expect(existsSync(second)).toBe(false);
      expect(existsSync(first)).toBe(true);
      await m.remove();
    },
    BUILD_TIMEOUT * 2,
  );
});
