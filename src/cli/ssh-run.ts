import { type ChildProcessByStdio, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { validateShedName } from "../core/names.js";
import { encodeArgvCommand } from "../protocol/argv-command.js";
import type { CliContext } from "./context.js";
import { controlDir, hostAlias } from "./ssh-files.js";

/**
 * What to run over SSH: an exact argv (sent as a `shed-exec:` command, never
 * as a shell string), with a remote terminal (`ssh -t`) when `tty` is set, or the
 * login shell (console).
 */
export type SshMode = ({ argv: string[]; tty?: boolean } | { console: true }) & {
  /** -A / --no-forward-agent; unset: the server entry's forward_agent (default off). */
  forwardAgent?: boolean;
};

/**
 * `ssh -A` options when the agent is to be forwarded and there is one to forward.
 * The connection gets its own control path, one per agent socket: the shared
 * master would otherwise carry another run's agent, or none.
 */
export function agentOptions(wanted: boolean, authSock: string | undefined): string[] {
  if (!wanted || !authSock) return [];
  const tag = createHash("sha256").update(authSock).digest("hex").slice(0, 10);
  return ["-A", "-o", `ControlPath="${join(controlDir(), `a-${tag}-%C`)}"`];
}

/** Whether a run forwards the agent: -A or --no-forward-agent, else the server entry's forward_agent; only with an agent. */
export function forwardsAgent(ctx: CliContext, flag: boolean | undefined): boolean {
  const wanted = flag ?? ctx.cfg.pick(ctx.opts.server)?.entry.forward_agent === true;
  return wanted && !!process.env.SSH_AUTH_SOCK;
}

/** The OpenSSH client's argv and environment for one run against a shed. */
async function sshInvocation(
  ctx: CliContext,
  name: string,
  mode: SshMode,
): Promise<{ args: string[]; env: NodeJS.ProcessEnv }> {
  validateShedName(name);
  const server = await ctx.server();
  mkdirSync(controlDir(), { recursive: true, mode: 0o700 });
  const base = ["-F", ctx.cfg.sshConfigFile, "-l", name];
  const env = { ...process.env };
  base.push(...agentOptions(mode.forwardAgent ?? server.entry.forward_agent === true, env.SSH_AUTH_SOCK || undefined));
  if ("argv" in mode) {
    return { args: [...base, mode.tty ? "-t" : "-T", hostAlias(server.name), encodeArgvCommand(mode.argv)], env };
  }
  return { args: [...base, process.stdin.isTTY ? "-t" : "-T", hostAlias(server.name)], env };
}

/**
 * exec, console and attach run the real OpenSSH client against the server's
 * SSH endpoint, with the generated ssh_config (pinned host key, the CLI's key,
 * multiplexing). The exit code of the remote command is ssh's exit code.
 */
export async function runSsh(ctx: CliContext, name: string, mode: SshMode): Promise<number> {
  const { args, env } = await sshInvocation(ctx, name, mode);
  const child = spawn("ssh", args, { stdio: "inherit", env });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + 1 : 255)));
  });
}

/** Runs an argv in a shed without a terminal and collects its output (for commands whose output the CLI parses). */
export async function captureSsh(
  ctx: CliContext,
  name: string,
  argv: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { args, env } = await sshInvocation(ctx, name, { argv });
  const child = spawn("ssh", args, { stdio: ["ignore", "pipe", "pipe"], env });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (c: Buffer) => out.push(c));
  child.stderr.on("data", (c: Buffer) => err.push(c));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 + 1 : 255),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
  });
}

/**
 * Like runSsh with an argv, but the caller gets the ssh process with piped
 * stdin, stdout and stderr: for a remote command the CLI feeds and reads
 * itself (sync's manifest and tar stream).
 */
export async function spawnSsh(
  ctx: CliContext,
  name: string,
  argv: string[],
): Promise<ChildProcessByStdio<Writable, Readable, Readable>> {
  const { args, env } = await sshInvocation(ctx, name, { argv });
  return spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"], env });
}
