import type { Writable } from "node:stream";
import { ShedError } from "../../core/errors.js";
import type { CliContext } from "../context.js";
import { spawnSsh } from "../ssh-run.js";

/** One command run in a shed through the SSH exec path (the same as `shed exec`), as user shed. */
export interface RemoteResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface RemoteOptions {
  /** Writes the command's stdin (with backpressure, see writeAll); stdin is ended after it. */
  feed?: (stdin: Writable) => Promise<void>;
  /** Output as it arrives, instead of collecting it. */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export async function runInShed(
  ctx: CliContext,
  name: string,
  argv: string[],
  opts: RemoteOptions = {},
): Promise<RemoteResult> {
  const child = await spawnSsh(ctx, name, argv);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => (opts.onStdout ? opts.onStdout(c) : out.push(c)));
  child.stderr.on("data", (c: Buffer) => {
    err.push(c);
    opts.onStderr?.(c);
  });
  // The remote side may exit before it has read everything (EPIPE): its exit code and stderr say why.
  child.stdin.on("error", () => {});
  const closed = new Promise<number>((resolve, reject) => {
    child.on("error", (e) =>
      reject(
        new ShedError("INTERNAL", `cannot run ssh: ${e.message}`, {
          hint: "install the OpenSSH client (ssh) on this machine",
        }),
      ),
    );
    child.on("close", (code, signal) => resolve(code ?? (signal ? 129 : 255)));
  });
  let fed: Promise<void> = Promise.resolve();
  if (opts.feed) {
    const feed = opts.feed;
    fed = (async () => {
      try {
        await feed(child.stdin);
      } finally {
        child.stdin.end();
      }
    })();
    // A failed feed (the pipe closed early) is reported by the exit code; a local failure is rethrown below.
    fed.catch(() => {});
  } else child.stdin.end();
  const code = await closed;
  try {
    await fed;
  } catch (e) {
    if (!(e instanceof PipeClosed)) throw e;
  }
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") };
}

/** The remote command stopped reading its stdin. */
export class PipeClosed extends Error {
  constructor() {
    super("the remote command closed its input");
  }
}

/** Writes a chunk, waiting for the pipe to drain when it is full (never more than one chunk buffered). */
export function writeAll(stream: Writable, chunk: Buffer): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.reject(new PipeClosed());
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (ok: boolean) => {
      stream.off("drain", onDrain);
      stream.off("close", onClose);
      stream.off("error", onClose);
      if (ok) resolve();
      else reject(new PipeClosed());
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    stream.on("drain", onDrain);
    stream.on("close", onClose);
    stream.on("error", onClose);
  });
}

/** A failed remote command as an error: ssh's own failures (exit 255) and the server's messages are passed on. */
export function remoteError(what: string, name: string, res: RemoteResult): ShedError {
  const tail = res.stderr.trim().split("\n").slice(-5).join("\n");
  return new ShedError("BACKEND_ERROR", `${what} in shed ${name} failed (exit ${res.code})${tail ? `: ${tail}` : ""}`, {
    hint:
      res.code === 255
        ? `check that the shed exists and the server is reachable: shed status ${name}`
        : `try: shed exec ${name} -- true`,
  });
}
