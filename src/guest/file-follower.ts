import { constants } from "node:fs";
import { open } from "node:fs/promises";

/** Bytes per read: each read is a round trip to libuv's thread pool, so few and big. */
const READ_BYTES = 1 << 20;
/** How long to wait for more once the end of the file is reached while the writer is still at work. */
const POLL_MS = 20;

/**
 * Follows a growing file on this host, as `tail -f` does, passing each new
 * piece to `onBytes` as it is written: for a hook's log when the backend keeps
 * it where the server can read it. `finish()` reads up to where the file
 * ends at that moment and stops; call it once the writer is done (what a
 * daemon the hook left behind writes later belongs to the log, not to the run).
 * A file that shrinks was rotated (emptied in place, see LOG_ROTATE_SCRIPT in
 * guest/hook-script.ts): following goes on from its new start.
 */
export class FileFollower {
  private finishing = false;
  private wake: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(path: string, onBytes: (bytes: Buffer) => void) {
    this.done = this.follow(path, onBytes);
    // The failure is reported by finish(); until then it is not unhandled.
    this.done.catch(() => {});
  }

  /** Reads to where the file ends now, and stops; rejects if the file could not be read. */
  finish(): Promise<void> {
    this.finishing = true;
    this.wake?.();
    return this.done;
  }

  private async follow(path: string, onBytes: (bytes: Buffer) => void): Promise<void> {
    // The file is in a directory the guest can write: a hook could swap it for a symlink to a file of
    // this host (which the server would read as root) or for a FIFO (which would block the open).
    // Only a regular file is followed, never through a symlink.
    const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!(await file.stat()).isFile()) throw new Error(`${path} is not a regular file; not followed`);
      let pos = 0;
      /** Once finishing: the file's size then. Reading stops there, though a daemon the hook left may write on. */
      let end = Number.POSITIVE_INFINITY;
      for (;;) {
        if (this.finishing && end === Number.POSITIVE_INFINITY) {
          end = (await file.stat()).size;
          if (end < pos) pos = 0;
        }
        const want = Math.min(READ_BYTES, end - pos);
        if (want <= 0) return;
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await file.read(buf, 0, want, pos);
        pos += bytesRead;
        if (bytesRead > 0) {
          onBytes(bytesRead < want / 4 ? Buffer.from(buf.subarray(0, bytesRead)) : buf.subarray(0, bytesRead));
          continue;
        }
        if (end !== Number.POSITIVE_INFINITY) return;
        if ((await file.stat()).size < pos) {
          pos = 0;
          continue;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, POLL_MS);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    } finally {
      await file.close();
    }
  }
}
