import type { HookName } from "../config/provision-file.js";
import type { HookStatus } from "../core/types.js";
import type { GuestExec } from "./exec.js";
import { FileFollower } from "./file-follower.js";
import {
  HOOK_DONE_MARK,
  HOOK_RESULT_MARK,
  HOOK_SCRIPT,
  LOG_OPEN_MARK,
  LOG_ROTATE_SCRIPT,
  PATH_MARK,
} from "./hook-script.js";
import { forwardBytes, forwardText, TailBuffer } from "./lines.js";
import { PATH_PROBE, PATH_PROBE_ARGS } from "./path-capture.js";

export const HOOK_LOG_DIR = "/var/log/shed";
export const hookLogPath = (hook: HookName): string => `${HOOK_LOG_DIR}/${hook}.log`;
/** The default cap of each hook log on disk (server config `hook_log_max_size`). */
export const DEFAULT_HOOK_LOG_MAX_BYTES = 64 * 1024 ** 2;

/** One hook run's record (explicit states: running, succeeded, failed, timed_out, skipped). */
export type HookRun = HookStatus;

export interface HookRunRequest {
  hook: HookName;
  script: string;
  timeoutMs: number;
  env: Record<string, string>;
  /** The hook's output as it arrives, undecoded (a hook can print hundreds of megabytes). */
  onOutput(bytes: Buffer): void;
  signal?: AbortSignal;
  /** Written in the guest when the hook succeeds (the install state file). */
  stateFile?: string;
  /** The log is rotated above this size (default DEFAULT_HOOK_LOG_MAX_BYTES). */
  logMaxBytes?: number;
  /**
   * With stateFile: when it exists already, nothing runs and the run is
   * "skipped" (the state file records a completed install), checked in the
   * hook's own exec.
   */
  skipIfDone?: boolean;
  /**
   * Takes the PATH probe (guest/path-capture.ts) in the hook's own exec, just
   * before the hook and after it exited 0, and gives each output here once
   * the run is over.
   */
  onPathProbe?(when: "before" | "after", output: string): void;
  /** Run this fixed script of Shed's with one argument instead of `script` (then only a label): devcontainer.json's stages. */
  inline?: { script: string; arg: string };
  /** Run as this guest user instead of shed (devcontainer.json's remoteUser). */
  user?: string;
}

/** What a run that found the state file says (the seed: "state file marks completion"). */
export const ALREADY_DONE = "already ran (the state file records it)";

/** Runs one hook in the guest with the fixed hook script; never throws for a hook's own failure. */
export async function runHook(guest: GuestExec, req: HookRunRequest): Promise<HookRun> {
  const log = hookLogPath(req.hook);
  const started_at = new Date().toISOString();
  const t0 = Date.now();
  const seconds = (Math.max(req.timeoutMs, 1) / 1000).toFixed(3);
  // Where the backend keeps the log readable on this host, the server follows the file itself; else
  // the hook script streams it over exec. Same bytes either way; the first skips the exec relay.
  const hostLog = await guest.hostPath?.(log).catch(() => undefined);
  const proc = await guest.exec({
    argv: [
      "bash",
      "-c",
      HOOK_SCRIPT,
      "shed-hook",
      req.hook,
      req.script,
      seconds,
      log,
      req.stateFile ?? "",
      hostLog ? "host" : "exec",
      String(req.logMaxBytes ?? DEFAULT_HOOK_LOG_MAX_BYTES),
      LOG_ROTATE_SCRIPT,
      req.skipIfDone ? "1" : "",
      req.onPathProbe ? PATH_PROBE : "",
      ...PATH_PROBE_ARGS,
      req.inline?.script ?? "",
      req.inline?.arg ?? "",
    ],
    cwd: "/workspace",
    env: req.env,
    ...(req.user ? { user: req.user } : {}),
  });
  const tail = new TailBuffer(8000);
  const onBytes = (b: Buffer) => {
    tail.push(b);
    req.onOutput(b);
  };
  let stderr = "";
  let follower: FileFollower | undefined;
  const onAbort = () => void proc.signal("SIGTERM");
  req.signal?.addEventListener("abort", onAbort, { once: true });
  // Guard against a guest that never ends the stream: the hook's limit plus the kill grace and some slack,
  // and the PATH probes' own bounds (17 s each at most, path-capture.ts) when they run.
  const probesMs = req.onPathProbe ? 2 * 17_000 : 0;
  const guard = setTimeout(() => void proc.signal("SIGKILL"), req.timeoutMs + 30_000 + probesMs);
  const outDone = forwardBytes(proc.stdout, onBytes);
  const errDone = forwardText(proc.stderr, (t) => {
    stderr += t;
    // The script says when the new log exists (after keeping the old one as .1).
    if (hostLog && !follower && stderr.includes(LOG_OPEN_MARK)) follower = new FileFollower(hostLog, onBytes);
  });
  // The engine can go away under a hook (stopped, restarting): the run is then recorded as failed, saying why,
  // rather than thrown out of with its record left "running" and the log still followed.
  let lost: string | undefined;
  const wrapperCode = await proc.exited.catch((err: Error) => {
    lost = err.message;
    return undefined;
  });
  await Promise.all([outDone, errDone]);
  await follower?.finish().catch((err: Error) => {
    req.onOutput(Buffer.from(`[shed: could not read the log on the host (${err.message}); \`shed logs\` shows it]\n`));
  });
  clearTimeout(guard);
  req.signal?.removeEventListener("abort", onAbort);

  const base = { started_at, log, script: req.script };
  for (const [when, mark] of Object.entries(PATH_MARK) as ["before" | "after", string][]) {
    const probe = new RegExp(`^${mark} ([A-Za-z0-9+/=]*)$`, "m").exec(stderr);
    if (probe) req.onPathProbe?.(when, Buffer.from(probe[1] ?? "", "base64").toString("utf8"));
  }
  if (new RegExp(`^${HOOK_DONE_MARK}$`, "m").test(stderr) && wrapperCode === 0) {
    return { ...base, state: "skipped", message: ALREADY_DONE };
  }
  if (req.signal?.aborted) {
    return {
      ...base,
      state: "timed_out",
      duration_ms: Date.now() - t0,
      tail: tail.lines(10),
      message: "cut off: the operation's time limit (--timeout) passed",
    };
  }
  const mark = new RegExp(`^${HOOK_RESULT_MARK} (\\d+) (\\d+)$`, "m").exec(stderr);
  if (!mark) {
    const why =
      lost ??
      stderr
        .trim()
        .split("\n")
        .filter((l) => l && l !== LOG_OPEN_MARK && !l.startsWith(PATH_MARK.before))
        .at(-1) ??
      `the hook runner exited with ${wrapperCode}`;
    const code = wrapperCode === undefined ? {} : { exit_code: wrapperCode };
    return { ...base, state: "failed", ...code, duration_ms: Date.now() - t0, message: why };
  }
  const exit_code = Number(mark[1]);
  const duration_ms = Number(mark[2]);
  // timeout(1) exits 124 after TERM, 137 after the KILL that follows; only a run that reached the limit counts.
  const timedOut = (exit_code === 124 || exit_code === 137) && duration_ms >= req.timeoutMs - 50;
  const lastLines = tail.lines(10);
  if (timedOut) {
    return {
      ...base,
      state: "timed_out",
      exit_code,
      duration_ms,
      tail: lastLines,
      message: `killed after the ${req.hook} hook's time limit of ${formatLimit(req.timeoutMs)}`,
    };
  }
  if (exit_code !== 0) {
    return { ...base, state: "failed", exit_code, duration_ms, tail: lastLines, message: `exited with ${exit_code}` };
  }
  return { ...base, state: "succeeded", exit_code, duration_ms };
}

function formatLimit(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}
