import { chown, lstat, mkdir } from "node:fs/promises";
import { basename, dirname, isAbsolute } from "node:path";
import { create, extract } from "tar";
import { GUEST_USER } from "../core/types.js";
import type { GetTarRequest, PutTarRequest } from "../protocol/agent-messages.js";
import type { AgentStreamIO, StreamHandler } from "./connection.js";
import { lookupUser } from "./users.js";

/** Defaults when the host names no limit: far above any credential set, far below filling a disk by accident. */
export const DEFAULT_TAR_MAX_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_TAR_MAX_ENTRIES = 100_000;

/** Entry types an archive from the host may hold; devices, FIFOs and the like are refused. */
const ALLOWED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

/**
 * Extracts the host's archive under req.dir, owned by the user. node-tar's own
 * protections stay on (no preservePaths): no absolute paths, no `..`, nothing
 * written through a symlink, and `unlink` replaces an existing file or symlink
 * instead of writing through it. strict turns each of those into a refusal of
 * the whole archive rather than a skipped entry.
 */
export async function startPutTar(req: PutTarRequest, io: AgentStreamIO, release: () => void): Promise<StreamHandler> {
  const refuse = (code: "TAR_REFUSED" | "NO_SUCH_USER" | "TOO_LARGE", message: string): StreamHandler => {
    release();
    io.fail(code, message);
    return { onCancel() {} };
  };
  if (!isAbsolute(req.dir)) return refuse("TAR_REFUSED", `the target directory ${req.dir} is not absolute`);
  const userName = req.user ?? GUEST_USER;
  const user = await lookupUser(userName);
  if (!user) return refuse("NO_SUCH_USER", `no user ${userName} in the guest's /etc/passwd`);
  const existed = await lstat(req.dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!existed) {
    try {
      await mkdir(req.dir, { recursive: true });
      await chown(req.dir, user.uid, user.gid);
    } catch (err) {
      return refuse("TAR_REFUSED", `cannot make ${req.dir}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  const maxBytes = req.maxBytes ?? DEFAULT_TAR_MAX_BYTES;
  const maxEntries = req.maxEntries ?? DEFAULT_TAR_MAX_ENTRIES;
  let bytes = 0;
  let entries = 0;
  let failed = false;
  const fail = (code: "TAR_REFUSED" | "TOO_LARGE", message: string) => {
    if (failed) return;
    failed = true;
    release();
    io.fail(code, message);
    unpack.abort(new Error(message));
  };
  const unpack = extract({
    cwd: req.dir,
    strict: true,
    unlink: true,
    preserveOwner: false,
    uid: user.uid,
    gid: user.gid,
    maxDepth: 256,
    filter: (path, entry) => {
      const type = "type" in entry ? entry.type : "File";
      entries++;
      if (entries > maxEntries) fail("TOO_LARGE", `the archive has more than ${maxEntries} entries`);
      else if (!ALLOWED_TYPES.has(type)) fail("TAR_REFUSED", `entry ${printable(path)} is a ${type}, which is refused`);
      return !failed;
    },
  });
  unpack.on("error", (err: Error & { tarCode?: string }) => {
    fail("TAR_REFUSED", `refused the archive for ${req.dir}: ${printable(err.message)}`);
  });
  unpack.on("close", () => {
    if (failed) return;
    release();
    io.end({ bytes, entries });
  });
  io.accept({});
  return {
    onData(buf, consumed) {
      if (failed) return consumed();
      bytes += buf.length;
      if (bytes > maxBytes) {
        fail("TOO_LARGE", `the archive exceeds ${maxBytes} bytes`);
        return consumed();
      }
      if (unpack.write(buf)) consumed();
      else unpack.once("drain", consumed);
    },
    onEof() {
      if (!failed) unpack.end();
    },
    onCancel() {
      if (!failed) {
        failed = true;
        release();
        unpack.abort(new Error("cancelled"));
      }
    },
  };
}

/** Streams req.path (a file or a tree, symlinks kept as symlinks) as an archive with one top entry. */
export async function startGetTar(req: GetTarRequest, io: AgentStreamIO, release: () => void): Promise<StreamHandler> {
  if (!isAbsolute(req.path)) {
    release();
    io.fail("NOT_FOUND", `the path ${req.path} is not absolute`);
    return { onCancel() {} };
  }
  const exists = await lstat(req.path).then(
    () => true,
    () => false,
  );
  if (!exists) {
    release();
    io.fail("NOT_FOUND", `${req.path} does not exist in the guest`);
    return { onCancel() {} };
  }
  const maxBytes = req.maxBytes ?? DEFAULT_TAR_MAX_BYTES;
  let bytes = 0;
  let entries = 0;
  let done = false;
  const pack = create({ cwd: dirname(req.path), follow: false, portable: true, onWriteEntry: () => entries++ }, [
    req.path === "/" ? "." : basename(req.path),
  ]);
  const stop = (code: "TOO_LARGE" | "INTERNAL", message: string) => {
    if (done) return;
    done = true;
    release();
    io.fail(code, message);
    pack.pause();
  };
  pack.on("data", (buf: Buffer) => {
    if (done) return;
    bytes += buf.length;
    if (bytes > maxBytes) return stop("TOO_LARGE", `${req.path} packs to more than ${maxBytes} bytes`);
    pack.pause();
    io.data(buf, () => pack.resume());
  });
  pack.on("error", (err: unknown) => stop("INTERNAL", `packing ${req.path} failed: ${printable(String(err))}`));
  pack.on("end", () => {
    if (done) return;
    done = true;
    release();
    io.eof();
    io.end({ bytes, entries });
  });
  io.accept({});
  return {
    onCancel() {
      if (done) return;
      done = true;
      release();
      pack.pause();
    },
  };
}

/** Archive paths come from the host: never echo control characters or long names back. */
function printable(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, "?");
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}
