import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { posix } from "node:path";
import { type Duplex, PassThrough, Writable } from "node:stream";
import type Docker from "dockerode";
import { GUEST_USER } from "../../core/types.js";
import type { ExecProcess, ExecSpec, GuestExec } from "../../guest/exec.js";
import { backendError } from "./docker-errors.js";

const STOPPED_WHY =
  "by `shed stop`, `docker stop`, or the Docker engine stopping or restarting; `shed start` starts it again";

/** The kernel's flag of a task in exit (include/linux/sched.h), field 9 of /proc/PID/stat. */
const PF_EXITING = 0x4;

/** GuestExec through the Docker Engine's exec API (the seed: hooks run via docker exec). */
export class DockerGuestExec implements GuestExec {
  private mounts: Docker.ContainerInspectInfo["Mounts"] | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly container: string,
  ) {}

  async exec(spec: ExecSpec): Promise<ExecProcess> {
    const container = this.docker.getContainer(this.container);
    const tty = spec.tty !== undefined;
    let exec: Docker.Exec;
    try {
      exec = await container.exec({
        Cmd: tty ? withTerminalSize(spec.argv, spec.tty?.cols ?? 80, spec.tty?.rows ?? 24) : spec.argv,
        User: spec.user ?? GUEST_USER,
        Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
        WorkingDir: spec.cwd,
        AttachStdin: spec.stdin === true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: tty,
      });
    } catch (err) {
      throw backendError(`exec in ${this.container}`, err);
    }
    let stream: Duplex;
    try {
      stream = (await exec.start({ hijack: spec.stdin === true, stdin: spec.stdin === true, Tty: tty })) as Duplex;
    } catch (err) {
      throw backendError(`exec in ${this.container}`, err);
    }

    const stdout = new PassThrough();
    const stderr = new PassThrough();
    if (tty) stream.pipe(stdout);
    else demux(stream, stdout, stderr);

    const exited = new Promise<number>((resolve, reject) => {
      let done = false;
      const endOutput = () => {
        if (!tty) stdout.end();
        stderr.end();
      };
      const finish = () => {
        if (done) return;
        done = true;
        exitCodeOf(exec).then(
          async (code) => {
            // Killed with its container (docker stop, the engine stopping or restarting): the one line saying
            // so is what a hook's record and an SSH session show, instead of a bare exit status.
            if (!tty && (code === 137 || code === 143) && !(await this.stillRunning())) {
              stderr.write(`shed: container ${this.container} stopped while this ran (${STOPPED_WHY})\n`);
            }
            endOutput();
            resolve(code);
          },
          (err) => {
            endOutput();
            reject(backendError(`exec in ${this.container}`, err));
          },
        );
      };
      stream.on("end", finish);
      stream.on("close", finish);
      stream.on("error", (err) => {
        if (done) return;
        done = true;
        endOutput();
        reject(backendError(`exec in ${this.container}`, err));
      });
    });
    // Output must be consumed by the caller; the exit code does not wait for it beyond the engine's stream.
    exited.catch(() => {});

    return {
      stdin: spec.stdin === true ? stdinOf(stream, tty) : null,
      stdout,
      stderr,
      exited,
      resize: async (cols, rows) => {
        await exec.resize({ h: rows, w: cols }).catch(() => {});
      },
      signal: async (signal) => {
        await this.signalExec(exec, signal);
      },
    };
  }

  /**
   * Whether the container still runs. An exec is killed while the container's
   * init is exiting (the kernel kills the rest of its PID namespace and waits
   * for them), before the engine records the container as exited: an init gone
   * from this host's /proc, a zombie, or one flagged PF_EXITING counts as
   * stopped, when the engine is on this host (a unix socket). An engine that
   * cannot say counts as stopped.
   */
  private async stillRunning(): Promise<boolean> {
    const info = await this.docker
      .getContainer(this.container)
      .inspect()
      .catch(() => undefined);
    if (info?.State.Running !== true) return false;
    if (typeof (this.docker.modem as { socketPath?: unknown }).socketPath !== "string" || !info.State.Pid) return true;
    const stat = await readFile(`/proc/${info.State.Pid}/stat`, "utf8").catch(() => undefined);
    if (stat === undefined) return false;
    // After "(comm)": state, ppid, pgrp, session, tty_nr, tpgid, flags.
    const [state, , , , , , flags] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return state !== "Z" && state !== "X" && (Number(flags) & PF_EXITING) === 0;
  }

  /**
   * A guest path inside a volume maps to the volume's mount point on the
   * engine's host. That is readable here when the server runs on the engine's
   * host with the rights to read it (as root, usually); otherwise undefined.
   */
  async hostPath(guestPath: string): Promise<string | undefined> {
    // A container's mounts never change: one inspect serves every hook of an operation.
    this.mounts ??= await this.docker
      .getContainer(this.container)
      .inspect()
      .then((info) => info.Mounts)
      .catch(() => undefined);
    // The deepest mount holding the path is what the guest sees there (a bind mount inside a volume's
    // folder hides the volume's files under it); only a volume's folder maps to a host path.
    const mount = this.mounts
      ?.filter((m) => !posix.relative(m.Destination, guestPath).startsWith(".."))
      .sort((a, b) => b.Destination.length - a.Destination.length)[0];
    if (mount?.Type !== "volume" || !mount.Source) return undefined;
    try {
      await access(mount.Source, constants.R_OK | constants.X_OK);
    } catch {
      return undefined;
    }
    return posix.join(mount.Source, posix.relative(mount.Destination, guestPath));
  }

  /**
   * Docker has no API to signal an exec'd process. The engine reports its host
   * PID; /proc/<pid>/status gives the PID inside the container's namespace, and a
   * root exec of `kill` delivers the signal there.
   */
  private async signalExec(exec: Docker.Exec, signal: NodeJS.Signals): Promise<void> {
    const info = await exec.inspect().catch(() => undefined);
    if (!info?.Running || !info.Pid) return;
    let guestPid = String(info.Pid);
    try {
      const status = await readFile(`/proc/${info.Pid}/status`, "utf8");
      const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (nspid && nspid.length > 0) guestPid = nspid[nspid.length - 1] ?? guestPid;
    } catch {
      // Engine on another host: the PID is all we have.
    }
    const kill = await this.exec({
      argv: ["kill", "-s", signal.replace(/^SIG/, ""), "--", guestPid],
      user: "root",
    });
    kill.stdout.resume();
    kill.stderr.resume();
    await kill.exited.catch(() => {});
  }
}

/**
 * Writing to the hijacked socket feeds stdin; end() half-closes it so the
 * process sees EOF. On a terminal there is no half-close (the engine would drop
 * the output), so end() only stops writing, as sshd does for a pty.
 */
function stdinOf(stream: Duplex, tty: boolean): Writable {
  if (!tty) return stream;
  return new Writable({
    write(chunk, _enc, cb) {
      stream.write(chunk, cb);
    },
  });
}

/**
 * Engines before API 1.42 ignore a console size at exec start, and a resize
 * after start races the program's first look at its terminal. Setting the size
 * in the terminal before exec'ing the program removes the race.
 */
function withTerminalSize(argv: string[], cols: number, rows: number): string[] {
  return [
    "sh",
    "-c",
    'stty cols "$1" rows "$2" 2>/dev/null; shift 2; exec "$@"',
    "shed-tty",
    String(cols),
    String(rows),
    ...argv,
  ];
}

async function exitCodeOf(exec: Docker.Exec): Promise<number> {
  // The stream can end a moment before the engine records the exit code.
  for (let i = 0; i < 60; i++) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return info.ExitCode;
    await new Promise((r) => setTimeout(r, Math.min(1 + i, 20)));
  }
  const info = await exec.inspect();
  return info.ExitCode ?? 255;
}

/**
 * Splits the engine's multiplexed stream (8-byte header: stream type, 3 zero
 * bytes, big-endian length) into stdout and stderr. Payloads are passed on as
 * slices of the chunks that carried them, never joined: hooks can print
 * hundreds of megabytes, and docker-modem's demuxer concatenated every chunk.
 */
export function demux(source: Duplex, stdout: Writable, stderr: Writable): void {
  let header: Buffer = Buffer.alloc(0);
  let remaining = 0;
  let target: Writable = stdout;
  source.on("data", (chunk: Buffer) => {
    let off = 0;
    while (off < chunk.length) {
      if (remaining === 0) {
        const take = Math.min(8 - header.length, chunk.length - off);
        const part = chunk.subarray(off, off + take);
        header = header.length ? Buffer.concat([header, part]) : part;
        off += take;
        if (header.length < 8) break;
        target = header[0] === 2 ? stderr : stdout;
        remaining = header.readUInt32BE(4);
        header = Buffer.alloc(0);
        continue;
      }
      const take = Math.min(remaining, chunk.length - off);
      target.write(chunk.subarray(off, off + take));
      off += take;
      remaining -= take;
    }
  });
}
