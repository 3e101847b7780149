import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ShedError } from "../../core/errors.js";
import type { ClientConfig } from "../client-config.js";
import { controlDir, hostAlias } from "../ssh-files.js";
import { mappingSpec, type TunnelMapping } from "./mapping.js";
import { pidAlive, pollUntil, portStatus, processCommand } from "./processes.js";
import { tunnelsDir } from "./recorded.js";

/**
 * Tunnels are the real OpenSSH client (`ssh -N -L 127.0.0.1:L:localhost:R`)
 * with the ssh_config the CLI generates: the pinned host key, the CLI's key and
 * BatchMode come with it, as for exec and console, and OpenSSH's forwarding is
 * what users already trust (half-closes, window sizes, keepalives). A
 * background shed's process is a control master of its own, so a later start
 * adds ports to it (`ssh -O forward`) without cutting the connections the
 * first ones carry. It never shares the exec/console master: that one exits
 * after ControlPersist and would take the tunnels with it.
 */
export interface TunnelTarget {
  cfg: ClientConfig;
  server: string;
  shed: string;
}

const READY_MS = 30_000;

/** The background master's control socket: short (sun_path), one per server and shed. */
export function controlPath(t: TunnelTarget): string {
  const tag = createHash("sha256").update(`${t.server}\0${t.shed}`).digest("hex").slice(0, 12);
  return join(controlDir(), `t-${tag}`);
}

export const logFile = (t: TunnelTarget): string => join(tunnelsDir(t.cfg.dir), `${t.server}.${t.shed}.log`);

const forwardArg = (m: TunnelMapping): string => `127.0.0.1:${m.local}:localhost:${m.remote}`;

function sshArgs(t: TunnelTarget, mappings: TunnelMapping[], control: string | undefined): string[] {
  return [
    "-F",
    t.cfg.sshConfigFile,
    "-l",
    t.shed,
    "-N",
    "-T",
    ...(control
      ? ["-o", "ControlMaster=yes", "-o", `ControlPath="${control}"`, "-o", "ControlPersist=no"]
      : ["-o", "ControlMaster=no", "-o", "ControlPath=none"]),
    // A listener that cannot be bound ends ssh instead of leaving a tunnel without it.
    "-o",
    "ExitOnForwardFailure=yes",
    // A server or network gone for good ends the process, so `shed tunnels list` can call it dead.
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "ForwardAgent=no",
    // OpenSSH says why a forwarded connection was refused (e.g. the shed is stopped) only from INFO up.
    "-o",
    "LogLevel=INFO",
    ...mappings.flatMap((m) => ["-L", forwardArg(m)]),
    hostAlias(t.server),
  ];
}

/** Whether pid is still this tunnel's ssh (and not another process that got the pid since). */
export function isTunnelProcess(t: { server: string; shed: string }, pid: number): boolean {
  if (!pidAlive(pid)) return false;
  const cmd = processCommand(pid);
  return !!cmd && /(^|\/)ssh /.test(cmd) && cmd.includes(` -l ${t.shed} `) && cmd.includes(hostAlias(t.server));
}

/** Until every listener is bound (or ssh has exited, or the deadline); then why not, if it did not. */
async function waitListening(child: ChildProcess, mappings: TunnelMapping[], control?: string): Promise<boolean> {
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  return pollUntil(async () => {
    if (exited) return true;
    // The control socket appears once forwarding is set up (OpenSSH listens for mux clients after that).
    if (control && !existsSync(control)) return false;
    for (const m of mappings) if ((await portStatus(m.local)) !== "held") return false;
    return true;
  }, READY_MS).then((ok) => ok && !exited);
}

function failed(t: TunnelTarget, mappings: TunnelMapping[], output: string): ShedError {
  const text = output.trim();
  const inUse = /Address already in use|cannot listen to port: (\d+)/.exec(text);
  return new ShedError(
    inUse ? "PORT_IN_USE" : "SERVER_UNREACHABLE",
    `ssh could not set up the tunnels ${mappings.map(mappingSpec).join(", ")} to shed ${t.shed}${text ? `:\n${text}` : ""}`,
    {
      hint: inUse
        ? "another program took the port meanwhile: pick another LOCAL port (-t LOCAL:REMOTE)"
        : "check the server with `shed list` and the shed with `shed console NAME`",
    },
  );
}

/** Starts the shed's background master with these forwards; resolves to its pid once every listener is bound. */
export async function startBackground(t: TunnelTarget, mappings: TunnelMapping[]): Promise<number> {
  mkdirSync(controlDir(), { recursive: true, mode: 0o700 });
  const control = controlPath(t);
  // The caller found no live master for this shed: a socket file here is a dead one's (ssh killed hard), and
  // would both stop the new master from listening and pass for its readiness.
  rmSync(control, { force: true });
  const log = logFile(t);
  const fd = openSync(log, "w", 0o600);
  let child: ChildProcess;
  try {
    // Its own session and no stdio of ours: it outlives this command and holds none of its pipes open.
    child = spawn("ssh", sshArgs(t, mappings, control), { detached: true, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const spawned = await new Promise<number | Error>((resolve) => {
    child.once("spawn", () => resolve(child.pid as number));
    child.once("error", resolve);
  });
  if (spawned instanceof Error) throw sshMissing(spawned);
  if (!(await waitListening(child, mappings, control))) {
    child.kill("SIGTERM");
    throw failed(t, mappings, readFileSync(log, "utf8"));
  }
  return spawned;
}

/** Adds forwards to a running background master through its control socket. */
export function addForwards(t: TunnelTarget, control: string, mappings: TunnelMapping[]): void {
  for (const m of mappings) {
    const res = spawnSync(
      "ssh",
      [
        "-F",
        t.cfg.sshConfigFile,
        "-o",
        `ControlPath="${control}"`,
        "-O",
        "forward",
        "-L",
        forwardArg(m),
        hostAlias(t.server),
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    if (res.error) throw sshMissing(res.error);
    if (res.status !== 0) throw failed(t, [m], res.stderr);
  }
}

/**
 * A foreground tunnel: ssh with the terminal's stderr, which the caller waits
 * on. Resolves once every listener is bound; Ctrl-C or SIGTERM ends ssh and
 * lets the caller clean up.
 */
export async function startForeground(
  t: TunnelTarget,
  mappings: TunnelMapping[],
): Promise<{ pid: number; exit: Promise<number> }> {
  const child = spawn("ssh", sshArgs(t, mappings, undefined), { stdio: ["ignore", "inherit", "inherit"] });
  const exit = new Promise<number>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 0 : 255))),
  );
  const spawned = await new Promise<number | Error>((resolve) => {
    child.once("spawn", () => resolve(child.pid as number));
    child.once("error", resolve);
  });
  if (spawned instanceof Error) throw sshMissing(spawned);
  const stop = () => child.kill("SIGTERM");
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  process.once("SIGHUP", stop);
  if (!(await waitListening(child, mappings))) {
    child.kill("SIGTERM");
    // ssh wrote why on the terminal already.
    throw failed(t, mappings, "");
  }
  return { pid: spawned, exit };
}

function sshMissing(err: Error): ShedError {
  return new ShedError("NOT_SUPPORTED", `cannot run the OpenSSH client (ssh): ${err.message}`, {
    hint: "install OpenSSH's client (ssh on PATH); tunnels run it as exec and console do",
  });
}
