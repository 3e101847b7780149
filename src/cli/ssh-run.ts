import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { validateShedName } from "../core/names.js";
import { encodeArgv } from "../server/ssh/argv-env.js";
import type { CliContext } from "./context.js";
import { controlDir, hostAlias } from "./ssh-files.js";

/**
 * exec and console run the real OpenSSH client against the server's SSH
 * endpoint, with the generated ssh_config (pinned host key, the CLI's key,
 * multiplexing). The exit code of the remote command is ssh's exit code.
 */
export async function runSsh(
  ctx: CliContext,
  name: string,
  mode: { argv: string[] } | { console: true },
): Promise<number> {
  validateShedName(name);
  const server = await ctx.server();
  mkdirSync(controlDir(), { recursive: true, mode: 0o700 });
  const base = ["-F", ctx.cfg.sshConfigFile, "-l", name];
  const env = { ...process.env };
  let args: string[];
  if ("argv" in mode) {
    env.SHED_EXEC_ARGV = encodeArgv(mode.argv);
    args = [...base, "-T", hostAlias(server.name), "shed-exec"];
  } else {
    args = [...base, process.stdin.isTTY ? "-t" : "-T", hostAlias(server.name)];
  }
  const child = spawn("ssh", args, { stdio: "inherit", env });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + 1 : 255)));
  });
}
