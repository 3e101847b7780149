// The --list and --prune of scripts/build-vm-image.sh (which runs this holding the arch's lock):
//   node scripts/vm-image-builds.mjs list|prune IMAGES_DIR ARCH [DATA_DIR...]
//
// A build (IMAGES_DIR/builds/shed-vm-<arch>-<build>/) is in use when it is the current one (the
// symlink IMAGES_DIR/shed-vm-<arch>), when a disk in a data dir names it (the backing file of an
// instance overlay or of a kept disk, or an instance.json's image), or when a running process has
// one of its files open (a VM of a data dir not named here still holds its base open). Prune
// removes only builds that are in use in none of these ways, and removes nothing when a disk
// cannot be read (better a build too many than a shed without its base).
import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

const [mode, imagesArg, arch, ...dataDirArgs] = process.argv.slice(2);
if (!["list", "prune"].includes(mode) || !imagesArg || !arch) {
  fail("usage: vm-image-builds.mjs list|prune IMAGES_DIR ARCH [DATA_DIR...]");
}
const imagesDir = resolve(imagesArg);
const buildsDir = join(imagesDir, "builds");
const current = join(imagesDir, `shed-vm-${arch}`);
const prefix = `shed-vm-${arch}-`;

function fail(message) {
  console.error(`build-vm-image: ${message}`);
  process.exit(1);
}

const builds = existsSync(buildsDir)
  ? readdirSync(buildsDir)
      .filter((n) => n.startsWith(prefix) && statSync(join(buildsDir, n)).isDirectory())
      .sort()
  : [];
const currentName = existsSync(current) ? basename(realpathSync(current)) : undefined;
const realBuilds = existsSync(buildsDir) ? realpathSync(buildsDir) : buildsDir;

/**
 * The build a directory named by a disk or metadata means. The old path IMAGES_DIR/shed-vm-<arch>
 * (before builds/) meant the build its .legacy record names, whatever the symlink says now.
 */
function buildOfDir(dir) {
  const record = `${dir}.legacy`;
  if (existsSync(record) && lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink()) {
    return basename(readFileSync(record, "utf8").trim());
  }
  let real;
  try {
    real = realpathSync(dir);
  } catch {
    return undefined;
  }
  return dirname(real) === realBuilds ? basename(real) : undefined;
}

/** Which builds the disks and metadata in the data dirs name, each with who names it. */
function references() {
  const refs = new Map();
  const problems = [];
  const add = (build, who) => {
    if (!build) return;
    if (!refs.has(build)) refs.set(build, []);
    refs.get(build).push(who);
  };
  for (const arg of dataDirArgs) {
    const dataDir = resolve(arg);
    if (!existsSync(dataDir))
      fail(`data dir ${dataDir} does not exist (a typo would make its sheds' builds look unused)`);
    const vmDir = join(dataDir, "vm");
    if (!existsSync(vmDir)) continue;
    // <data_dir>/vm/<name>/{root.qcow2,instance.json} and <data_dir>/vm/kept/*.qcow2.
    for (const entry of readdirSync(vmDir)) {
      const sub = join(vmDir, entry);
      if (!lstatSync(sub).isDirectory()) continue;
      for (const file of readdirSync(sub)) {
        const path = join(sub, file);
        if (file === "instance.json") {
          try {
            const image = JSON.parse(readFileSync(path, "utf8")).image;
            if (typeof image === "string") add(buildOfDir(image), `${path} (image)`);
          } catch (err) {
            problems.push(`${path}: ${err.message}`);
          }
        } else if (file.endsWith(".qcow2")) {
          try {
            // -U: an overlay a running QEMU holds locked is still readable.
            const info = JSON.parse(
              execFileSync("qemu-img", ["info", "-U", "--output=json", path], { encoding: "utf8", stdio: "pipe" }),
            );
            const backing = info["full-backing-filename"] ?? info["backing-filename"];
            if (backing) add(buildOfDir(dirname(resolve(dirname(path), backing))), `${path} (backing file)`);
          } catch (err) {
            problems.push(`${path}: ${(err.stderr || err.message).toString().trim()}`);
          }
        }
      }
    }
  }
  return { refs, problems };
}

/** Builds with a file open in a running process (only the processes this user may look at). */
function openBuilds() {
  const open = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let fds;
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (dirname(dirname(target)) !== realBuilds) continue;
      const build = basename(dirname(target));
      if (!open.has(build)) open.set(build, new Set());
      open.get(build).add(pid);
    }
  }
  return open;
}

function sizeMiB(dir) {
  let bytes = 0;
  for (const f of readdirSync(dir)) bytes += statSync(join(dir, f)).blocks * 512;
  return Math.round(bytes / 1048576);
}

function manifestOf(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  } catch {
    return {};
  }
}

const { refs, problems } = references();
const open = openBuilds();

if (mode === "list") {
  if (builds.length === 0) console.log(`no builds for ${arch} in ${buildsDir}`);
  for (const name of builds) {
    const dir = join(buildsDir, name);
    const m = manifestOf(dir);
    const flags = [name === currentName ? "current" : undefined, `recipe ${m.recipe ?? "?"}`, `${sizeMiB(dir)} MiB`];
    flags.push(`built ${statSync(dir).mtime.toISOString()}`);
    console.log(`${name}  ${flags.filter(Boolean).join("  ")}`);
    for (const who of refs.get(name) ?? []) console.log(`  used by ${who}`);
    for (const pid of open.get(name) ?? []) console.log(`  open in pid ${pid}`);
    if (name !== currentName && !refs.has(name) && !open.has(name)) console.log("  unused");
  }
  if (dataDirArgs.length === 0) console.log("(no data dirs named: disks of sheds are not looked at)");
  for (const p of problems) console.log(`cannot read ${p}`);
  process.exit(0);
}

if (problems.length > 0) {
  fail(`nothing removed: cannot tell which build these disks use:\n  ${problems.join("\n  ")}`);
}
let removed = 0;
for (const name of builds) {
  if (name === currentName) continue;
  const why = refs.get(name)?.[0] ?? (open.has(name) ? `open in pid ${[...open.get(name)][0]}` : undefined);
  if (why) {
    console.log(`kept ${name}: used by ${why}`);
    continue;
  }
  const mib = sizeMiB(join(buildsDir, name));
  rmSync(join(buildsDir, name), { recursive: true, force: true });
  console.log(`removed ${name} (${mib} MiB)`);
  removed++;
}
console.log(`${removed} build(s) removed; current: ${currentName ?? "none"}`);
