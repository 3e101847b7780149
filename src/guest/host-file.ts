import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";

/** What a host-side read of a guest file found; undefined (from readBelow) when it cannot tell. */
export type HostFileRead = { kind: "missing" } | { kind: "file"; bytes: Buffer; atLimit: boolean };

/**
 * Reads `root/<parts...>` on this host without ever following a symlink
 * below `root`, reading at most `maxBytes`. `root` is a directory the server
 * trusts (a volume's mount point); everything below it is the guest's to
 * change at any moment, so each component is opened relative to the one
 * before it (through /proc/self/fd, Linux's openat for a path) with
 * O_NOFOLLOW: a `.shed` swapped for a symlink to /root, even between two
 * checks, is never gone through. A FIFO is not waited on (O_NONBLOCK).
 *
 * Only a plain answer is given: the file's bytes (atLimit when there were
 * at least maxBytes), or "missing" when a
 * component does not exist. Anything else (a symlink, a directory, a FIFO,
 * no /proc) is undefined, and the caller asks the guest instead, where the
 * guest's own symlinks resolve inside the guest.
 */
export async function readBelow(
  root: string,
  parts: readonly string[],
  maxBytes: number,
): Promise<HostFileRead | undefined> {
  const opened: FileHandle[] = [];
  try {
    let dir = await open(root, constants.O_RDONLY | constants.O_DIRECTORY);
    opened.push(dir);
    for (const [i, part] of parts.entries()) {
      if (part === "" || part === "." || part === ".." || part.includes("/")) return undefined;
      const last = i === parts.length - 1;
      const flags = last
        ? constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY
        : constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_DIRECTORY;
      const next = await open(`/proc/self/fd/${dir.fd}/${part}`, flags).catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return "missing" as const;
        return undefined;
      });
      if (next === undefined) return undefined;
      if (next === "missing") return { kind: "missing" };
      opened.push(next);
      dir = next;
    }
    const file = dir;
    if (!(await file.stat()).isFile()) return undefined;
    // Never shown unread: only the bytes read are returned.
    const buf = Buffer.allocUnsafe(maxBytes);
    let got = 0;
    while (got < maxBytes) {
      const { bytesRead } = await file.read(buf, got, maxBytes - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { kind: "file", bytes: buf.subarray(0, got), atLimit: got >= maxBytes };
  } catch {
    return undefined;
  } finally {
    await Promise.all(opened.map((f) => f.close().catch(() => {})));
  }
}
