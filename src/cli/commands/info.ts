import type { Command } from "@commander-js/extra-typings";
import { validateShedName } from "../../core/names.js";
import type { Shed } from "../../core/types.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { runSsh } from "../ssh-run.js";
import { execInSession } from "./connect.js";
import { describeShed } from "./describe.js";
import { listSheds } from "./list.js";

/** list, exec, console: looking at and into sheds. */
export function registerInfoCommands(program: Command<[], GlobalOptions>): void {
  program
    .command("list")
    .alias("ls")
    .description("list sheds (running and stopped) on the server")
    .option("--all", "list sheds on every configured server")
    .option("-v, --verbose", "also show each shed's CPUs and memory")
    .action(async (opts) => {
      await listSheds(new CliContext(program.opts()), opts.all === true, opts.verbose === true);
    });

  program
    .command("show <name>")
    .alias("get")
    .description("show one shed")
    .action(async (name) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      const { api } = await ctx.server();
      const shed = await api.json<Shed>("GET", `/api/sheds/${name}`);
      ctx.result(shed, () => describeShed(shed));
    });

  program
    .command("exec <name> <command...>")
    .description(
      "run a command in a shed: shed exec NAME -- CMD [ARGS...] (exit code passed through); with -S, type it into a tmux session instead",
    )
    .option("-S, --session <session>", "send the command into this running tmux session (see `shed sessions`)")
    .option("-A, --forward-agent", "forward your SSH agent ($SSH_AUTH_SOCK) into the shed, as ssh -A")
    .option("--no-forward-agent", "do not forward it, whatever the server entry says")
    .action(async (name, command, opts) => {
      const ctx = new CliContext(program.opts());
      if (opts.session !== undefined) await execInSession(ctx, name, opts.session, command);
      else process.exitCode = await runSsh(ctx, name, { argv: command, forwardAgent: opts.forwardAgent });
    });

  program
    .command("console <name>")
    .description("open an interactive login shell in a shed")
    .option("-A, --forward-agent", "forward your SSH agent ($SSH_AUTH_SOCK) into the shed, as ssh -A")
    .option("--no-forward-agent", "do not forward it, whatever the server entry says")
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      process.exitCode = await runSsh(ctx, name, { console: true, forwardAgent: opts.forwardAgent });
    });
}
