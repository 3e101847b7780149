import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { ShedError } from "../../core/errors.js";
import { type InstanceMeta, type ProcessRecord, readInstanceMeta, updateInstanceMeta } from "./instance-meta.js";

/**
 * Supervision of hypervisor processes that must outlive the server: each runs in its own session
 * (no SIGHUP or terminal signal from the server's group reaches it), with stdio going to files in
 * the instance directory (no pipe whose reader could die), and is found again by pid + start time.
 *
 * Nothing here is an event: a process that is not our child has no exit notification on Linux
 * short of pidfd, which Node does not expose. Waiting for an exit therefore polls /proc with a
 * deadline.
 */

interface ProcStat {
  state: string;
  startTime: string;
}

/** /proc/PID/stat: the comm field (2) may hold spaces and parentheses, so fields are counted after the last ')'. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); field 22 (starttime) is therefore rest[19].
  const state = rest[0];
  const startTime = rest[19];
  if (!state || !startTime || !/^\d+$/.test(startTime)) return undefined;
  return { state, startTime };
}

/** The start time of a process in clock ticks since boot, or undefined when there is no such process. */
export function readProcStartTime(pid: number): string | undefined {
  return readProcStat(pid)?.startTime;
}

/**
 * True when the recorded process is still the one running under that pid: it exists, has not
 * exited (a zombie whose parent has not reaped it yet counts as exited), and started at the same
 * tick. A different start time means the pid was reused by an unrelated process.
 */
export function isAlive(rec: ProcessRecord | null | undefined): boolean {
  if (!rec) return false;
  const stat = readProcStat(rec.pid);
  if (!stat) return false;
  if (stat.state === "Z" || stat.state === "X" || stat.state === "x") return false;
  return stat.startTime === rec.start_time;
}

export interface SpawnDetachedOptions {
  /** argv[0] is the program (looked up on PATH); never a shell string. */
  argv: readonly string[];
  cwd: string;
  stdoutFile: string;
  stderrFile: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a process in a session of its own with stdio to files, and returns its identity. The
 * server keeps no handle that the process depends on: if the server dies, the process runs on and
 * a later server finds it through the returned record.
 */
export async function spawnDetached(opts: SpawnDetachedOptions): Promise<ProcessRecord> {
  const [program, ...args] = opts.argv;
  if (!program) throw new ShedError("INTERNAL", "spawnDetached: empty argv");
  const out = openSync(opts.stdoutFile, "a", 0o600);
  const err = openSync(opts.stderrFile, "a", 0o600);
  try {
    const child = spawn(program, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ["ignore", out, err],
    });
    const pid = child.pid;
    if (pid === undefined) {
      const cause = await new Promise<Error>((resolve) => child.once("error", resolve));
      throw new ShedError("BACKEND_ERROR", `could not start ${program}: ${cause.message}`, {
        cause,
        hint: `check that ${program} is installed and executable`,
      });
    }
    child.on("error", () => {});
    child.unref();
    // The start time is set at fork and kept across exec, so it can be read at once.
    const startTime = readProcStartTime(pid);
    if (startTime === undefined) {
      throw new ShedError("BACKEND_ERROR", `${program} (pid ${pid}) exited as soon as it started`, {
        hint: `see ${opts.stderrFile}`,
      });
    }
    return { pid, start_time: startTime, argv0: program, started_at: new Date().toISOString() };
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

/** Sends a signal only if the pid still belongs to the recorded process; false when it does not. */
export function signalProcess(rec: ProcessRecord, signal: NodeJS.Signals): boolean {
  if (!isAlive(rec)) return false;
  try {
    process.kill(rec.pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

const POLL_MS = 50;

/** Resolves true once the process has exited, false if it is still running at the deadline. */
export async function waitForExit(rec: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(rec)) return true;
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS);
  }
}

export type KillOutcome = "not-running" | "terminated" | "killed";

/**
 * SIGTERM, then SIGKILL after `graceMs`, each only while the pid still belongs to the recorded
 * process (never a stranger that reused the pid).
 */
export async function killProcess(rec: ProcessRecord, graceMs: number): Promise<KillOutcome> {
  if (!signalProcess(rec, "SIGTERM")) return "not-running";
  if (await waitForExit(rec, graceMs)) return "terminated";
  signalProcess(rec, "SIGKILL");
  if (await waitForExit(rec, 10_000)) return "killed";
  throw new ShedError("BACKEND_ERROR", `${rec.argv0} (pid ${rec.pid}) did not exit after SIGKILL`, {
    hint: "the process may be stuck in the kernel (uninterruptible I/O); check `ps -o stat -p PID`",
  });
}

export interface ReattachResult {
  meta: InstanceMeta;
  /** The recorded hypervisor is running (the same process, not a reused pid). */
  running: boolean;
  /** The hypervisor was recorded as running but had died; the metadata now says stopped. */
  foundDead: boolean;
}

/**
 * Reconciles one instance's metadata with the live processes, as a restarted server does for
 * every instance: a hypervisor that is still running is simply adopted (nothing to reconnect: its
 * sockets are in the instance directory); one that died while nobody watched is recorded as
 * stopped, and its helpers, which serve nothing now, are ended.
 */
export async function reattach(dir: string): Promise<ReattachResult | undefined> {
  const meta = readInstanceMeta(dir);
  if (!meta) return undefined;
  if (isAlive(meta.hypervisor)) return { meta, running: true, foundDead: false };
  if (meta.hypervisor === null && Object.keys(meta.helpers).length === 0) {
    return { meta, running: false, foundDead: false };
  }
  const foundDead = meta.hypervisor !== null;
  for (const helper of Object.values(meta.helpers)) await killProcess(helper, 2_000);
  const next = updateInstanceMeta(dir, (m) => ({
    ...m,
    hypervisor: null,
    helpers: {},
    ...(foundDead ? { last_stop: "died" as const, last_stopped_at: new Date().toISOString() } : {}),
  }));
  return { meta: next, running: false, foundDead };
}
