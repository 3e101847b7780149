import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ShedError } from "../../core/errors.js";
import type { ClientConfig } from "../client-config.js";
import { pidAlive } from "./processes.js";
import { tunnelStateFile, tunnelsDir } from "./recorded.js";

/** One forwarded port, held by one ssh process (a process carries all of a shed's background ports). */
export interface TunnelEntry {
  server: string;
  shed: string;
  local: number;
  remote: number;
  pid: number;
  /** Kept running after the command returned; such a process is the shed's one, with a control socket. */
  background: boolean;
  /** The ssh master's control socket (background only): later starts add ports through it. */
  control?: string;
  started: string;
}

export interface TunnelState {
  version: 1;
  tunnels: TunnelEntry[];
}

const stateFile = (cfg: ClientConfig): string => tunnelStateFile(cfg.dir);
const lockFile = (cfg: ClientConfig): string => join(tunnelsDir(cfg.dir), "state.lock");

/** The state as it is on disk (no lock: a reader sees the last complete write, thanks to the rename). */
export function readTunnelState(cfg: ClientConfig): TunnelState {
  let text: string;
  try {
    text = readFileSync(stateFile(cfg), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, tunnels: [] };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<TunnelState>;
    if (parsed.version === 1 && Array.isArray(parsed.tunnels)) return { version: 1, tunnels: parsed.tunnels };
  } catch {
    // Reported below with the file's name.
  }
  throw new ShedError("INVALID_CONFIG", `${stateFile(cfg)} is not a tunnel state file shed can read`, {
    hint: "stop the ssh processes it lists (or let them be) and remove the file; `shed tunnels list` starts afresh",
  });
}

/** Written to a temp file and renamed over the old one, so a reader never sees half of it. */
function writeTunnelState(cfg: ClientConfig, state: TunnelState): void {
  const tmp = `${stateFile(cfg)}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, stateFile(cfg));
}

const LOCK_WAIT_MS = 60_000;

/**
 * Runs `fn` holding the state's lock file (made with O_EXCL, holding the
 * holder's pid), and writes what it returns. A lock whose holder is gone (a
 * killed command) is taken over. Two commands at once take turns, so neither
 * loses the other's entries.
 */
export async function withTunnelState<T>(cfg: ClientConfig, fn: (state: TunnelState) => Promise<T> | T): Promise<T> {
  mkdirSync(tunnelsDir(cfg.dir), { recursive: true, mode: 0o700 });
  await takeLock(lockFile(cfg));
  try {
    const state = readTunnelState(cfg);
    const result = await fn(state);
    writeTunnelState(cfg, state);
    return result;
  } finally {
    try {
      unlinkSync(lockFile(cfg));
    } catch {
      // Already gone: nothing to release.
    }
  }
}

async function takeLock(file: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = lockHolder(file);
    // A lock with no pid yet is one being taken this instant, unless it stayed so (its maker died in between).
    const stale = holder === undefined ? lockAgeMs(file) > 5_000 : !pidAlive(holder);
    if (stale) {
      // Stale: its holder died. Renaming it aside first means of two commands seeing it stale at once,
      // only one removes it; the other's rename fails and it tries again.
      const aside = `${file}.stale.${process.pid}`;
      try {
        renameSync(file, aside);
        if (lockHolder(aside) === holder) unlinkSync(aside);
        else renameSync(aside, file);
      } catch {
        // Someone else took or cleared it: try again.
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new ShedError("SHED_BUSY", `the tunnel state ${file} has been locked by process ${holder} for a minute`, {
        hint: `wait for that shed command to finish; if process ${holder} is not shed, remove ${file}`,
      });
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

function lockAgeMs(file: string): number {
  const st = statSync(file, { throwIfNoEntry: false });
  return st ? Date.now() - st.mtimeMs : Number.POSITIVE_INFINITY;
}

function lockHolder(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
