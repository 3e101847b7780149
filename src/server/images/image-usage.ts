import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { vmRootDir } from "../../backends/vm/instance-dir.js";
import type { Shed } from "../../core/types.js";

/**
 * The image name a shed's image stands for. Docker sheds record what create was given (`NAME` or
 * `NAME:latest` both mean `shed image build`'s NAME:latest); VM sheds record the build directory
 * they boot from (`<images>/builds/NAME-<arch>-<build>`), or, made before builds existed, the
 * name's link `<images>/NAME-<arch>`.
 */
export function imageNameOf(shed: Pick<Shed, "backend" | "image">): string {
  if (shed.backend === "docker") return shed.image.endsWith(":latest") ? shed.image.slice(0, -7) : shed.image;
  const m = /^(.+)-(x86_64|arm64)(?:-[^/]+)?$/.exec(basename(shed.image));
  return m?.[1] ?? shed.image;
}

/** The sheds using each image name. */
export function shedsByImage(sheds: readonly Shed[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of sheds) {
    const name = imageNameOf(s);
    out.set(name, [...(out.get(name) ?? []), s.name]);
  }
  return out;
}

/** The VM build directories of NAME under imagesDir, and which of them the name's link points at. */
export function vmBuildsOf(imagesDir: string, name: string, arch: string): { builds: string[]; current?: string } {
  const dir = join(imagesDir, "builds");
  const prefix = `${name}-${arch}-`;
  const builds = existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => n.startsWith(prefix) && /^[0-9a-f]+$/.test(n.slice(prefix.length)))
        .map((n) => join(dir, n))
    : [];
  const link = join(imagesDir, `${name}-${arch}`);
  const current = existsSync(link) ? realpathSync(link) : undefined;
  return { builds, ...(current ? { current } : {}) };
}

/**
 * The image build directories still needed by a disk in data_dir: each VM shed's (its record), and
 * each kept disk's backing file (`shed delete --keep-volume` keeps a qcow2 overlay, which cannot be
 * read without its base). A kept disk that cannot be read keeps every build: better a build too
 * many than a disk without its base.
 */
export function buildsInUse(dataDir: string, sheds: readonly Shed[]): { dirs: Set<string>; unreadable: string[] } {
  const dirs = new Set<string>();
  const unreadable: string[] = [];
  const add = (dir: string) => {
    dirs.add(dir);
    if (existsSync(dir)) dirs.add(realpathSync(dir));
  };
  for (const s of sheds) if (s.backend !== "docker") add(s.image);
  const kept = join(vmRootDir(dataDir), "kept");
  if (existsSync(kept)) {
    for (const f of readdirSync(kept)) {
      const file = join(kept, f);
      if (!statSync(file).isFile()) continue;
      try {
        const info = JSON.parse(
          execFileSync("qemu-img", ["info", "-U", "--output=json", file], { encoding: "utf8", timeout: 30_000 }),
        ) as { "backing-filename"?: string };
        if (info["backing-filename"]) add(dirname(info["backing-filename"]));
      } catch {
        unreadable.push(file);
      }
    }
  }
  return { dirs, unreadable };
}

/** Bytes a directory's files take on disk (a sparse rootfs counts what it holds, not its length). */
export function diskBytes(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) {
    const st = statSync(join(dir, f));
    if (st.isFile()) total += st.blocks * 512;
  }
  return total;
}
