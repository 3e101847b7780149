import type { Readable, Writable } from "node:stream";
import { ShedError } from "../core/errors.js";

/**
 * The one narrow door into a guest (container or VM). Everything Shed does
 * inside a shed (clone, hooks, PATH capture, SSH sessions, `shed exec`) goes
 * through it, so that code never depends on a backend.
 */
export interface ExecSpec {
  /** Program and arguments; never a shell string with values pasted in. */
  argv: string[];
  /** Guest user; default "shed". */
  user?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Allocate a terminal of this size (stdout and stderr then merge). */
  tty?: { cols: number; rows: number };
  /** Attach stdin (otherwise the process reads an empty stdin). */
  stdin?: boolean;
}

export interface ExecProcess {
  /** Present when spec.stdin was true; end() closes the process's stdin. */
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable;
  /** Resolves with the exit code once the process has exited and its output was read. */
  exited: Promise<number>;
  resize(cols: number, rows: number): Promise<void>;
  /** Sends a signal to the process (best effort: it may have exited already). */
  signal(signal: NodeJS.Signals): Promise<void>;
}

export interface GuestExec {
  exec(spec: ExecSpec): Promise<ExecProcess>;
  /**
   * Where a guest file can be read directly on this host, if the backend keeps
   * it in storage the server can read (Docker: a volume); undefined otherwise.
   * Only an optimization: hook output is then read from its log file instead
   * of being relayed through exec (see guest/hook-runner.ts).
   */
  hostPath?(guestPath: string): Promise<string | undefined>;
}

export interface CollectedRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and collects its output (for short, bounded commands). */
export async function runCollect(guest: GuestExec, spec: ExecSpec, input?: string | Buffer): Promise<CollectedRun> {
  const proc = await guest.exec({ ...spec, stdin: input !== undefined });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout.on("data", (c: Buffer) => out.push(c));
  proc.stderr.on("data", (c: Buffer) => err.push(c));
  if (proc.stdin) proc.stdin.end(input);
  const exitCode = await proc.exited;
  return {
    exitCode,
    stdout: Buffer.concat(out).toString("utf8"),
    stderr: Buffer.concat(err).toString("utf8"),
  };
}

/** A guest command that failed, said with the last lines of its stderr (never its stdout: that may hold file contents). */
export function commandFailure(what: string, stderr: string, code: number): ShedError {
  const detail = stderr.trim().split("\n").slice(-3).join("; ").slice(0, 400);
  return new ShedError("BACKEND_ERROR", `${what} failed: ${detail || `exit ${code}`}`);
}
