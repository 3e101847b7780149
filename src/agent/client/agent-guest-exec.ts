import { PassThrough, Writable } from "node:stream";
import { GUEST_USER } from "../../core/types.js";
import type { ExecProcess, ExecSpec, GuestExec } from "../../guest/exec.js";
import type { AgentClient } from "./agent-client.js";

/**
 * GuestExec over shed-agent, with DockerGuestExec's semantics: the exit code
 * (128 + n for a signal), stdout and stderr apart (merged into stdout on a
 * terminal, stderr then ends empty), stdin only when asked (otherwise the
 * program reads an empty stdin), end() on stdin is EOF except on a terminal
 * (which has no half-close), and `exited` resolves once the output was all
 * delivered. Signals and resizes are best effort.
 */
export class AgentGuestExec implements GuestExec {
  private readonly client: () => Promise<AgentClient>;

  /** Takes a client, or a function giving the current one (the backend reconnects after a VM restart). */
  constructor(client: AgentClient | (() => Promise<AgentClient>)) {
    this.client = typeof client === "function" ? client : async () => client;
  }

  async exec(spec: ExecSpec): Promise<ExecProcess> {
    const client = await this.client();
    const tty = spec.tty !== undefined;
    const proc = await client.exec({
      argv: spec.argv,
      user: spec.user ?? GUEST_USER,
      ...(spec.env ? { env: spec.env } : {}),
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
      ...(spec.tty ? { tty: spec.tty } : {}),
      stdin: spec.stdin === true,
    });
    // Output reaches the caller through PassThroughs it may read at its own pace; their
    // buffers drain into the credited streams' backpressure, so a slow reader slows the guest.
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    proc.stdout.pipe(stdout);
    proc.stderr.pipe(stderr);
    const ended = (s: PassThrough) =>
      new Promise<void>((resolve) => {
        if (s.writableFinished) resolve();
        else s.once("finish", resolve);
      });
    const exited = proc.exited.then(async (r) => {
      await Promise.all([ended(stdout), ended(stderr)]);
      return r.exitCode;
    });
    exited.catch(() => {});
    const stdin =
      spec.stdin === true
        ? new Writable({
            write(chunk: Buffer, _enc, cb) {
              proc.write(chunk, () => cb());
            },
            final(cb) {
              if (!tty) proc.closeStdin();
              cb();
            },
          })
        : null;
    return {
      stdin,
      stdout,
      stderr,
      exited,
      resize: async (cols, rows) => proc.resize(cols, rows),
      signal: async (signal) => proc.signal(signal),
    };
  }
}
