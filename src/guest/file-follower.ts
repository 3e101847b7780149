import { open } from "node:fs/promises";

/** Bytes per read: each read is a round trip to libuv's thread pool, so few and big. */
const READ_BYTES = 1 << 20;
/** How long to wait for more once the end of the file is reached while the writer is still at work. */
const POLL_MS = 20;

/**
 * Follows a growing file on this host, as `tail -f` does, passing each new
 * piece to `onBytes` as it is written: for a hook's log when the backend keeps
 * it where the server can read it. `finish()` reads what is left and stops;
 * call it once the writer is done.
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

  /** Reads to the end of the file and stops; rejects if the file could not be read. */
  finish(): Promise<void> {
    this.finishing = true;
    this.wake?.();
    return this.done;
  }

  private async follow(path: string, onBytes: (bytes: Buffer) => void): Promise<void> {
    const file = await open(path, "r");
    try {
      for (;;) {
        // Read the flag before reading: what was written before finish() is then read to the end.
        const last = this.finishing;
        const buf = Buffer.allocUnsafe(READ_BYTES);
        const { bytesRead } = await file.read(buf, 0, READ_BYTES, null);
        if (bytesRead > 0) {
          onBytes(bytesRead < READ_BYTES / 4 ? Buffer.from(buf.subarray(0, bytesRead)) : buf.subarray(0, bytesRead));
          continue;
        }
        if (last) return;
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
