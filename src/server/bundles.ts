import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ShedError } from "../core/errors.js";
import { formatSize } from "../core/size.js";

/** The default `max_bundle_size`: a repository's whole history, so generous, but not the whole disk. */
export const DEFAULT_MAX_BUNDLE_BYTES = 2 * 1024 ** 3;
/** The default `bundle_max_age`: a create follows its upload within seconds; one that never comes is not waited for long. */
export const DEFAULT_BUNDLE_MAX_AGE_MS = 10 * 60_000;

export interface BundleLimits {
  /** The largest upload, in bytes (server config `max_bundle_size`). */
  maxBytes: number;
  /** How long a complete upload that no create used is kept (server config `bundle_max_age`). */
  maxAgeMs: number;
}

/**
 * Git bundles uploaded by the CLI for `--repo <local path>`. Each is a file in
 * data_dir/bundles named by a random id, used once by a create.
 *
 * - An upload is written as `<id>.part` and renamed to `<id>.bundle` only when
 *   complete: a `.part` that no upload of this process is writing is a leftover
 *   (a server killed mid-upload) and goes at the next sweep.
 * - An upload over `maxBytes` (by its Content-Length, or as it arrives) is
 *   refused with 413 and its file removed at once; so is one whose client went
 *   away mid-way.
 * - A timer sweeps complete bundles older than `maxAgeMs` that no create has
 *   claimed, so an upload whose create never came does not wait for the next upload.
 */
export class BundleStore {
  private readonly dir: string;
  private readonly writing = new Set<string>();
  private readonly claimed = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    dataDir: string,
    private readonly limits: BundleLimits = { maxBytes: DEFAULT_MAX_BUNDLE_BYTES, maxAgeMs: DEFAULT_BUNDLE_MAX_AGE_MS },
    private readonly now: () => number = Date.now,
  ) {
    this.dir = join(dataDir, "bundles");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.sweep();
    // Often enough that a bundle outlives its age by at most a quarter of it (and never by more than a minute).
    const every = Math.min(60_000, Math.max(100, Math.floor(limits.maxAgeMs / 4)));
    this.timer = setInterval(() => this.sweep(), every);
    this.timer.unref();
  }

  /** Stores an upload; `declaredBytes` is the request's Content-Length, if it sent one. */
  async put(body: Readable, declaredBytes?: number): Promise<string> {
    if (declaredBytes !== undefined && declaredBytes > this.limits.maxBytes) {
      body.destroy();
      throw this.tooLarge(declaredBytes);
    }
    const id = randomBytes(16).toString("hex");
    const part = join(this.dir, `${id}.part`);
    const { maxBytes } = this.limits;
    let received = 0;
    const counter = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        received += chunk.length;
        done(received > maxBytes ? this.tooLarge() : undefined, chunk);
      },
    });
    this.writing.add(id);
    try {
      await pipeline(body, counter, createWriteStream(part, { mode: 0o600 }));
      renameSync(part, this.path(id));
      return id;
    } catch (err) {
      // Over the cap, or the client went away: nothing of it stays.
      rmSync(part, { force: true });
      body.destroy();
      if (err instanceof ShedError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || (err as Error).message === "aborted") {
        // Not the server's fault: no answer can reach that client anyway, and it is no internal error.
        throw new ShedError("INVALID_REQUEST", "the bundle upload ended before it was complete (the client went away)");
      }
      throw err;
    } finally {
      this.writing.delete(id);
    }
  }

  /** The file of an upload, claimed by the create that uses it (the sweep leaves it alone until remove()). */
  resolve(id: string): string | undefined {
    if (!/^[a-f0-9]{32}$/.test(id)) return undefined;
    if (!existsSync(this.path(id))) return undefined;
    this.claimed.add(id);
    return this.path(id);
  }

  remove(id: string): void {
    if (!/^[a-f0-9]{32}$/.test(id)) return;
    this.claimed.delete(id);
    rmSync(this.path(id), { force: true });
  }

  /** Removes complete bundles past their age that no create claimed, and `.part` files no upload is writing. */
  sweep(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const f of names) {
      const p = join(this.dir, f);
      const id = f.replace(/\.(bundle|part)$/, "");
      try {
        if (f.endsWith(".part")) {
          if (!this.writing.has(id)) rmSync(p, { force: true });
        } else if (!this.claimed.has(id) && this.now() - statSync(p).mtimeMs > this.limits.maxAgeMs) {
          rmSync(p, { force: true });
        }
      } catch {
        // Gone meanwhile (a create removed it): nothing to sweep.
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private tooLarge(bytes?: number): ShedError {
    return new ShedError(
      "PAYLOAD_TOO_LARGE",
      `the repository bundle${bytes === undefined ? "" : ` (${formatSize(bytes)})`} is larger than this server's max_bundle_size (${formatSize(this.limits.maxBytes)})`,
      {
        hint: "raise max_bundle_size in the server config, or push the repository somewhere the server can clone and give --repo its URL",
      },
    );
  }

  private path(id: string): string {
    return join(this.dir, `${id}.bundle`);
  }
}
