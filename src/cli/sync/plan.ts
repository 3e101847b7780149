import type { Dirent, Stats } from "node:fs";
import { lstat, readdir, readlink, stat } from "node:fs/promises";
import { join, posix, resolve } from "node:path";
import type { SyncPathSpec } from "../../config/sync-file.js";
import { includeMatcher } from "./glob.js";
import type { RemoteEntry } from "./manifest.js";

/** The shed user's home: `~` in a target, until the shed says its user's home is another (rehome). */
export const REMOTE_HOME = "/home/shed";

export type EntryType = "file" | "dir" | "symlink";

/** One thing to have in the shed: a file, directory or symlink from this machine, at its path in the shed. */
export interface LocalEntry {
  local: string;
  remote: string;
  /** The path as the user wrote it (the source, and below it), for messages. */
  shown: string;
  type: EntryType;
  mode: number;
  size: number;
  mtimeSec: number;
  linkTarget?: string;
}

/** A `paths` item of a feature, with what its source holds. */
export interface ScannedPath {
  feature: string;
  source: string;
  target: string;
  remote: string;
  /** "missing": the source does not exist (a warning, nothing else happens for it). */
  kind: "file" | "dir" | "missing" | "unreadable";
  entries: LocalEntry[];
  /** Sockets, FIFOs and devices under a directory source: never copied. */
  skipped: number;
  warnings: string[];
}

export function expandLocal(path: string, home: string): string {
  if (path === "~") return home;
  if (path.startsWith("~/")) return join(home, path.slice(2));
  return resolve(path);
}

export function expandRemote(path: string): string {
  const abs = path === "~" ? REMOTE_HOME : path.startsWith("~/") ? `${REMOTE_HOME}/${path.slice(2)}` : path;
  const normal = posix.normalize(abs);
  return normal.length > 1 ? normal.replace(/\/+$/, "") : normal;
}

/**
 * A scanned path whose target is under /home/shed, moved to `home`: the home
 * of the user the shed's commands run as (a devcontainer.json's remoteUser).
 */
export function rehome(path: ScannedPath, home: string): ScannedPath {
  const move = (p: string) =>
    p === REMOTE_HOME ? home : p.startsWith(`${REMOTE_HOME}/`) ? `${home}${p.slice(REMOTE_HOME.length)}` : p;
  return { ...path, remote: move(path.remote), entries: path.entries.map((e) => ({ ...e, remote: move(e.remote) })) };
}

/**
 * Reads a source: a file (a symlink given as the source is followed, as
 * dotfile managers link them), or a directory walked recursively, keeping
 * symlinks inside it as symlinks and, with `include`, only the matching files
 * (and the directories that lead to them).
 */
export async function scanPath(feature: string, spec: SyncPathSpec, home: string): Promise<ScannedPath> {
  const local = expandLocal(spec.source, home);
  const remote = expandRemote(spec.target);
  const scanned: ScannedPath = {
    feature,
    source: spec.source,
    target: spec.target,
    remote,
    kind: "missing",
    entries: [],
    skipped: 0,
    warnings: [],
  };
  let st: Stats;
  try {
    st = await stat(local);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      const dangling = await lstat(local).then(
        () => true,
        () => false,
      );
      scanned.warnings.push(`${spec.source}: ${dangling ? "is a broken symlink" : "not found"} (skipped)`);
    } else {
      scanned.kind = "unreadable";
      scanned.warnings.push(`${spec.source}: cannot read (${code ?? (e as Error).message}) (skipped)`);
    }
    return scanned;
  }
  if (st.isFile()) {
    scanned.kind = "file";
    scanned.entries.push(entryOf(local, remote, spec.source, "file", st));
    return scanned;
  }
  if (!st.isDirectory()) {
    scanned.kind = "unreadable";
    scanned.warnings.push(`${spec.source}: not a file or directory (skipped)`);
    return scanned;
  }
  scanned.kind = "dir";
  scanned.entries.push(entryOf(local, remote, spec.source, "dir", st));
  const matches = spec.include ? includeMatcher(spec.include) : undefined;
  await walk(scanned, local, remote, spec.source, "", matches);
  return scanned;
}

async function walk(
  out: ScannedPath,
  localDir: string,
  remoteDir: string,
  shownDir: string,
  relDir: string,
  matches: ((rel: string) => boolean) | undefined,
): Promise<void> {
  let names: Dirent[];
  try {
    names = await readdir(localDir, { withFileTypes: true });
  } catch (e) {
    out.warnings.push(`${shownDir}: cannot read directory (${(e as NodeJS.ErrnoException).code ?? e}) (skipped)`);
    return;
  }
  names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const d of names) {
    const local = join(localDir, d.name);
    const remote = `${remoteDir === "/" ? "" : remoteDir}/${d.name}`;
    const shown = `${shownDir.replace(/\/+$/, "")}/${d.name}`;
    const rel = relDir ? `${relDir}/${d.name}` : d.name;
    let st: Stats;
    try {
      st = await lstat(local);
    } catch (e) {
      out.warnings.push(`${shown}: cannot read (${(e as NodeJS.ErrnoException).code ?? e}) (skipped)`);
      continue;
    }
    if (st.isDirectory()) {
      const at = out.entries.length;
      out.entries.push(entryOf(local, remote, shown, "dir", st));
      await walk(out, local, remote, shown, rel, matches);
      // With include patterns, a directory is only created when something in it (or it) is included.
      if (matches && out.entries.length === at + 1 && !matches(rel)) out.entries.pop();
      continue;
    }
    if (matches && !matches(rel)) continue;
    if (st.isFile()) out.entries.push(entryOf(local, remote, shown, "file", st));
    else if (st.isSymbolicLink()) {
      try {
        const entry = entryOf(local, remote, shown, "symlink", st);
        entry.linkTarget = await readlink(local);
        out.entries.push(entry);
      } catch (e) {
        out.warnings.push(`${shown}: cannot read symlink (${(e as NodeJS.ErrnoException).code ?? e}) (skipped)`);
      }
    } else out.skipped += 1;
  }
}

function entryOf(local: string, remote: string, shown: string, type: EntryType, st: Stats): LocalEntry {
  return {
    local,
    remote,
    shown,
    type,
    mode: st.mode & 0o7777,
    size: type === "file" ? st.size : 0,
    mtimeSec: Math.floor(st.mtimeMs / 1000),
  };
}

/**
 * Whether the shed already has this entry: a file with the same size, mtime
 * (whole seconds, as tar keeps them) and permissions; a directory with the
 * same permissions (or a symlink to one there, which is kept); a symlink
 * with the same target.
 */
export function isUpToDate(e: LocalEntry, r: RemoteEntry | undefined): boolean {
  if (!r) return false;
  switch (e.type) {
    case "file":
      return r.type === "f" && r.size === e.size && r.mtimeSec === e.mtimeSec && (r.mode & 0o777) === (e.mode & 0o777);
    case "dir":
      return (r.type === "d" && (r.mode & 0o777) === (e.mode & 0o777)) || r.type === "l";
    case "symlink":
      return r.type === "l" && r.link === e.linkTarget;
  }
}

/** Splits each path's entries into what must be sent and what is up to date. */
export function compare(
  paths: ScannedPath[],
  manifest: Map<string, RemoteEntry>,
): { path: ScannedPath; send: LocalEntry[]; same: LocalEntry[] }[] {
  return paths.map((path) => {
    const send: LocalEntry[] = [];
    const same: LocalEntry[] = [];
    for (const e of path.entries) (isUpToDate(e, manifest.get(e.remote)) ? same : send).push(e);
    return { path, send, same };
  });
}
