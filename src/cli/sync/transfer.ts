import { open } from "node:fs/promises";
import type { Writable } from "node:stream";
import { Header, type HeaderData, Pax } from "tar";
import type { CliContext } from "../context.js";
import type { LocalEntry } from "./plan.js";
import { remoteError, runInShed, writeAll } from "./remote.js";

/**
 * Extraction in the shed: GNU tar as user shed (so everything it writes is
 * owned by shed), from stdin, names relative to `/`. `-p` keeps the modes as
 * sent (no umask), an existing symlink to a directory is kept, and tar's
 * messages name each path that failed.
 */
export const EXTRACT_ARGV: readonly string[] = [
  "tar",
  "-x",
  "-p",
  "-f",
  "-",
  "-C",
  "/",
  "--no-same-owner",
  "--keep-directory-symlink",
];

const BLOCK = 512;
const CHUNK = 64 * 1024;

export interface TransferResult {
  /** Entries written to the archive, by type, and the file bytes in it. */
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  /** Shed paths the transfer failed for (tar's messages, or a local read error), with the reason. */
  failures: { remote: string; message: string }[];
  /** Problems not tied to one path. */
  errors: string[];
  /** Files sent incomplete (zero-filled): removed again, so the next sync does not take them as up to date. */
  incomplete: string[];
}

/**
 * Streams the entries as a tar archive into `tar -x` in the shed, one file
 * at a time with backpressure (never the whole archive in memory). File
 * headers come from the open file, so size and content agree.
 */
export async function sendEntries(ctx: CliContext, name: string, entries: LocalEntry[]): Promise<TransferResult> {
  const result: TransferResult = { files: 0, dirs: 0, links: 0, bytes: 0, failures: [], errors: [], incomplete: [] };
  if (entries.length === 0) return result;
  const res = await runInShed(ctx, name, [...EXTRACT_ARGV], {
    feed: async (stdin) => {
      for (const e of entries) await writeEntry(stdin, e, result);
      await writeAll(stdin, Buffer.alloc(2 * BLOCK));
    },
  });
  const parsed = parseTarMessages(
    res.stderr,
    entries.map((e) => e.remote),
  );
  result.failures.push(...parsed.failures);
  result.errors.push(...parsed.other);
  if (res.code !== 0 && result.failures.length === 0 && result.errors.length === 0) {
    result.errors.push(remoteError("extracting the files", name, res).message);
  }
  if (result.incomplete.length > 0) {
    const rm = await runInShed(ctx, name, ["rm", "-f", "--", ...result.incomplete]);
    if (rm.code !== 0) result.errors.push(remoteError("removing incomplete files", name, rm).message);
  }
  return result;
}

async function writeEntry(out: Writable, e: LocalEntry, result: TransferResult): Promise<void> {
  const path = e.remote.replace(/^\/+/, "");
  const mtime = new Date(e.mtimeSec * 1000);
  if (e.type === "dir") {
    await writeAll(out, header({ path: `${path}/`, type: "Directory", mode: e.mode, size: 0, mtime }));
    result.dirs += 1;
    return;
  }
  if (e.type === "symlink") {
    const linkpath = e.linkTarget ?? "";
    await writeAll(out, header({ path, type: "SymbolicLink", mode: 0o777, size: 0, mtime, linkpath }));
    result.links += 1;
    return;
  }
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(e.local, "r");
  } catch (err) {
    result.failures.push({
      remote: e.remote,
      message: `cannot read ${e.shown}: ${(err as NodeJS.ErrnoException).code}`,
    });
    return;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      result.failures.push({ remote: e.remote, message: `${e.shown} is no longer a file` });
      return;
    }
    const size = st.size;
    const fileMtime = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
    await writeAll(out, header({ path, type: "File", mode: st.mode & 0o7777, size, mtime: fileMtime }));
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, left));
      let bytesRead = 0;
      let problem = "changed while being copied; sync again";
      try {
        ({ bytesRead } = await fh.read(buf, 0, buf.length, null));
      } catch (err) {
        problem = `could not be read (${(err as NodeJS.ErrnoException).code ?? err})`;
      }
      if (bytesRead === 0) {
        // The file shrank or failed while being sent: the archive still needs the announced size.
        result.failures.push({ remote: e.remote, message: `${e.shown} ${problem}` });
        result.incomplete.push(e.remote);
        await writeAll(out, Buffer.alloc(left));
        break;
      }
      await writeAll(out, bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
      left -= bytesRead;
    }
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await writeAll(out, Buffer.alloc(pad));
    result.files += 1;
    result.bytes += size;
  } finally {
    await fh.close();
  }
}

/** A ustar header, preceded by a pax header when a name is too long for ustar. */
function header(h: HeaderData & { path: string }): Buffer {
  const data: HeaderData = { ...h, uid: 1000, gid: 1000, uname: "shed", gname: "shed" };
  const hdr = new Header(data);
  const needPax = hdr.encode();
  const block = hdr.block as Buffer;
  if (!needPax) return block;
  const pax = new Pax({ path: h.path, mtime: h.mtime, size: h.size, ...(h.linkpath ? { linkpath: h.linkpath } : {}) });
  return Buffer.concat([pax.encode(), block]);
}

/**
 * GNU tar's `tar: NAME: MESSAGE` lines, by shed path (NAME is one of the
 * names sent, so a name with ": " in it is still found); the closing
 * "Exiting with failure status" line is dropped.
 */
export function parseTarMessages(
  stderr: string,
  sent: readonly string[],
): { failures: TransferResult["failures"]; other: string[] } {
  const names = new Set(sent.map((p) => p.replace(/^\/+/, "")));
  const failures: TransferResult["failures"] = [];
  const other: string[] = [];
  for (const line of stderr.split("\n")) {
    const text = line.trim();
    // Notes, not failures: the closing summary, the server starting a stopped shed, a clock ahead of the shed's.
    if (!text || /Exiting with failure status|^shed: starting |: time stamp .* in the future$/.test(text)) continue;
    let matched = false;
    if (text.startsWith("tar: ")) {
      for (let at = text.indexOf(": ", 5); at > 0; at = text.indexOf(": ", at + 1)) {
        const name = text.slice(5, at).replace(/\/$/, "");
        if (names.has(name)) {
          failures.push({ remote: `/${name}`, message: text.slice(at + 2) });
          matched = true;
          break;
        }
      }
    }
    if (!matched) other.push(text);
  }
  return { failures, other };
}
