import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { constants } from "node:os";
import { type IPty, spawn as spawnPty } from "@lydell/node-pty";
import { GUEST_USER } from "../core/types.js";
import type { ExecControl, ExecEnd, ExecRequest } from "../protocol/agent-messages.js";
import type { AgentStreamIO, StreamHandler } from "./connection.js";
import { type GuestUser, lookupUser } from "./users.js";

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** util-linux's setpriv switches uid, gid and supplementary groups as runuser does, then execs the program. */
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p)) ?? "setpriv";

/**
 * An exec: the program runs as the requested user (shed by default), in its own
 * process, with stdout and stderr kept apart, or on a terminal of the requested
 * size. The stream's END carries the exit code, as Docker reports it (128 + the
 * signal's number when a signal ended the program).
 */
export async function startExec(req: ExecRequest, io: AgentStreamIO, release: () => void): Promise<StreamHandler> {
  const userName = req.user ?? GUEST_USER;
  const user = await lookupUser(userName);
  if (!user) {
    release();
    io.fail("NO_SUCH_USER", `no user ${userName} in the guest's /etc/passwd`);
    return { onCancel() {} };
  }
  // Without a cwd: the user's home, or / for users whose home does not exist (nobody's /nonexistent).
  const cwd = req.cwd ?? ((await isDirectory(user.home)) ? user.home : "/");
  if (!(await isDirectory(cwd))) {
    release();
    io.fail("NOT_FOUND", `the working directory ${cwd} does not exist in the guest`);
    return { onCancel() {} };
  }
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: user.shell,
    ...(req.tty ? { TERM: "xterm" } : {}),
    ...req.env,
  };
  const argv = [...asUser(user), ...req.argv];
  return req.tty ? startPty(argv, cwd, env, req.tty, io, release) : startPipes(argv, cwd, env, req, io, release);
}

function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** setpriv's argv prefix that becomes the user: uid, gid, and the user's groups from /etc/group. */
function asUser(user: GuestUser): string[] {
  const known = !/^[0-9]+$/.test(user.name);
  return [SETPRIV, `--reuid=${user.uid}`, `--regid=${user.gid}`, known ? "--init-groups" : "--clear-groups", "--"];
}

function exitOf(code: number | null, signal: NodeJS.Signals | null | number): ExecEnd {
  if (signal !== null && signal !== 0) {
    const name = typeof signal === "number" ? signalName(signal) : signal;
    const num = typeof signal === "number" ? signal : (constants.signals[signal] ?? 0);
    return { exitCode: 128 + num, ...(name ? { signal: name } : {}) };
  }
  return { exitCode: code ?? 255 };
}

function signalName(num: number): string | undefined {
  return Object.entries(constants.signals).find(([, n]) => n === num)?.[0];
}

function isSignal(name: string): name is NodeJS.Signals {
  return name in constants.signals;
}

function startPipes(
  argv: string[],
  cwd: string,
  env: Record<string, string>,
  req: ExecRequest,
  io: AgentStreamIO,
  release: () => void,
): StreamHandler {
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd,
    env,
    stdio: [req.stdin ? "pipe" : "ignore", "pipe", "pipe"],
  });
  let started = false;
  child.on("spawn", () => {
    started = true;
    io.accept({ pid: child.pid ?? 0 });
  });
  child.on("error", (err: NodeJS.ErrnoException) => {
    if (started) return;
    // Only setpriv itself can be missing here (the program's absence is setpriv's exit 127).
    release();
    io.fail("INTERNAL", `the agent could not start ${argv[0]}: ${err.code ?? err.message}`);
  });
  child.stdin?.on("error", () => {});
  child.stdout?.on("data", (buf: Buffer) => {
    child.stdout?.pause();
    io.data(buf, () => child.stdout?.resume());
  });
  child.stderr?.on("data", (buf: Buffer) => {
    child.stderr?.pause();
    io.stderr(buf, () => child.stderr?.resume());
  });
  child.on("close", (code, signal) => {
    if (!started) return;
    release();
    io.end(exitOf(code, signal));
  });
  return {
    onData(buf, consumed) {
      if (!child.stdin || child.stdin.destroyed || child.stdin.writableEnded) return consumed();
      child.stdin.write(buf, () => consumed());
    },
    onEof() {
      child.stdin?.end();
    },
    onControl(c: ExecControl) {
      if ("signal" in c && isSignal(c.signal) && child.exitCode === null) {
        try {
          child.kill(c.signal);
        } catch {
          // Gone already: signals are best effort.
        }
      }
    },
    onCancel() {
      // The host went away: hang up, as a closed terminal would.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGHUP");
    },
  };
}

function startPty(
  argv: string[],
  cwd: string,
  env: Record<string, string>,
  size: { cols: number; rows: number },
  io: AgentStreamIO,
  release: () => void,
): StreamHandler {
  let term: IPty;
  try {
    term = spawnPty(argv[0] as string, argv.slice(1), {
      name: "xterm",
      cols: size.cols,
      rows: size.rows,
      cwd,
      env,
      encoding: null,
    });
  } catch (err) {
    release();
    io.fail("INTERNAL", `the agent could not open a terminal: ${(err as Error).message}`);
    return { onCancel() {} };
  }
  let exited = false;
  io.accept({ pid: term.pid });
  term.onData((data: string | Buffer) => {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    term.pause();
    io.data(buf, () => {
      if (!exited) term.resume();
    });
  });
  term.onExit(({ exitCode, signal }) => {
    exited = true;
    release();
    io.end(exitOf(exitCode, signal ?? null));
  });
  return {
    onData(buf, consumed) {
      if (!exited) term.write(buf as unknown as string);
      consumed();
    },
    // A terminal has no half-close (as with sshd's pty sessions): EOF only means no more input.
    onEof() {},
    onControl(c: ExecControl) {
      if (exited) return;
      try {
        if ("resize" in c) term.resize(c.resize.cols, c.resize.rows);
        else if (isSignal(c.signal)) term.kill(c.signal);
      } catch {
        // The process may be gone between the check and the call.
      }
    },
    onCancel() {
      if (!exited) term.kill("SIGHUP");
    },
  };
}
