import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { lstat, mkdir, open, realpath, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ShedError } from "../../core/errors.js";

/**
 * Writes what the guest changed back into a credential's source on the host.
 * A file is replaced atomically (a temp file beside it, then rename), keeping
 * the host file's mode and owner; a new file takes the guest's permission bits
 * and its directory's owner (the server may run as root for a user's ~/.ssh).
 * Nothing is written through a symlink inside the credential: the guest names
 * the paths, so each directory on the way must be a real one. The source itself
 * may be a symlink (dotfile managers make them): its target is written.
 */

/** The real path of a credential's source, so renames replace the file a symlinked source points at. */
export async function resolveSource(source: string): Promise<string> {
  return realpath(source);
}

/** The host path for rel inside root ("" is root itself), after checking no directory on the way is a symlink. */
async function hostPath(root: string, rel: string, create: boolean): Promise<string> {
  if (rel === "") return root;
  let dir = root;
  const parts = rel.split("/");
  for (const part of parts.slice(0, -1)) {
    if (part === "" || part === "." || part === "..") throw refusal(root, rel, "has an unexpected path component");
    const next = join(dir, part);
    let st: Stats | undefined;
    try {
      st = await lstat(next);
    } catch {
      st = undefined;
    }
    if (!st) {
      // Nothing to remove under a directory that is not there.
      if (!create) return join(root, rel);
      const parent = await lstat(dir);
      await mkdir(next, { mode: 0o700 });
      await chownPath(next, parent.uid, parent.gid);
    } else if (!st.isDirectory()) {
      throw refusal(root, rel, `goes through ${next}, which is not a directory`);
    }
    dir = next;
  }
  return join(dir, parts[parts.length - 1] as string);
}

/** Replaces root/rel with data atomically; mode is used only when the host has no such file yet. */
export async function writeHostFile(root: string, rel: string, data: Buffer, mode: number): Promise<void> {
  const path = await hostPath(root, rel, true);
  let existing: Stats | undefined;
  try {
    existing = await lstat(path);
  } catch {
    existing = undefined;
  }
  if (existing && !existing.isFile()) throw refusal(root, rel, "is not a regular file on the host");
  const owner = existing ?? (await lstat(dirname(path)));
  const tmp = join(dirname(path), `.${basename(path)}.shed-sync-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    try {
      await fh.chown(owner.uid, owner.gid);
    } catch {
      // Not root: the file stays ours, which is the owner the source already had when we could write it.
    }
    await fh.chmod(existing ? existing.mode & 0o7777 : mode & 0o777);
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Removes root/rel when it is a regular file (a directory credential's file the guest deleted). */
export async function deleteHostFile(root: string, rel: string): Promise<void> {
  const path = await hostPath(root, rel, false);
  const st = await lstat(path).catch(() => undefined);
  if (st?.isFile()) await unlink(path);
}

async function chownPath(path: string, uid: number, gid: number): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.chown(uid, gid);
  } catch {
    // As above: without root the directory is ours.
  } finally {
    await fh.close();
  }
}

function refusal(root: string, rel: string, why: string): ShedError {
  return new ShedError("BACKEND_ERROR", `not syncing ${rel} into ${root}: it ${why}`, {
    hint: "change it on the host; the guest's copy is left as it is",
  });
}
