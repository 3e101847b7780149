import type { Command } from "@commander-js/extra-typings";
import { toShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import type { Shed } from "../../core/types.js";
import type { ShedListResponse } from "../../protocol/api-types.js";
import { ApiClient } from "../api-client.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { safeLine, safeText } from "../safe-text.js";
import { runSsh } from "../ssh-run.js";
import { table } from "../table.js";
import { execInSession } from "./connect.js";
import { describeShed } from "./describe.js";

/** list, exec, console: looking at and into sheds. */
export function registerInfoCommands(program: Command<[], GlobalOptions>): void {
  program
    .command("list")
    .alias("ls")
    .description("list sheds (running and stopped) on the server")
    .option("--all", "list sheds on every configured server")
    .action(async (opts) => {
      const ctx = new CliContext(program.opts());
      const rows: (Shed & { server: string })[] = [];
      const errors: { server: string; error: string }[] = [];
      if (opts.all && Object.keys(ctx.cfg.data.servers).length > 0) {
        await Promise.all(
          Object.entries(ctx.cfg.data.servers).map(async ([name, entry]) => {
            try {
              const res = await new ApiClient(name, entry).json<ShedListResponse>("GET", "/api/sheds");
              rows.push(...res.sheds.map((s) => ({ ...s, server: name })));
            } catch (err) {
              errors.push({ server: name, error: toShedError(err).message });
            }
          }),
        );
      } else {
        const server = await ctx.server();
        const res = await server.api.json<ShedListResponse>("GET", "/api/sheds");
        rows.push(...res.sheds.map((s) => ({ ...s, server: server.name })));
      }
      rows.sort((a, b) => a.server.localeCompare(b.server) || a.name.localeCompare(b.name));
      for (const e of errors) process.stderr.write(`warning: server ${e.server}: ${safeText(e.error)}\n`);
      ctx.result({ sheds: rows, ...(errors.length ? { errors } : {}) }, () =>
        rows.length === 0
          ? "no sheds; create one with `shed create NAME --repo URL`"
          : [
              table(
                ["NAME", "STATUS", "SERVER", "BACKEND", "IMAGE", "CREATED", "SOURCE"],
                rows.map((s) => [
                  s.name,
                  s.status +
                    (s.owner === "unowned" ? ", unowned" : "") +
                    (s.interrupted ? `, ${s.interrupted.operation} interrupted at ${s.interrupted.step}` : "") +
                    (s.warnings.length ? ` (${s.warnings.length} warning${s.warnings.length > 1 ? "s" : ""})` : ""),
                  s.server,
                  s.backend,
                  s.image,
                  s.created_at.slice(0, 16).replace("T", " "),
                  s.repo ?? s.local_dir ?? "",
                ]),
              ),
              // A shed an operation was cut off in (the server was killed): which step, and the way out.
              ...rows
                .filter((s) => s.interrupted)
                .map(
                  (s) =>
                    `${safeLine(s.name)} (server ${safeLine(s.server)}): ${safeLine(s.interrupted?.message)}\n  hint: ${safeLine(s.interrupted?.hint)}`,
                ),
              // An unowned shed is left alone by its server: say why and what to do, under the table.
              ...rows
                .filter((s) => s.owner === "unowned")
                .map(
                  (s) =>
                    `${safeLine(s.name)} (server ${safeLine(s.server)}) is unowned: made by another shed-server or an older Shed without a server id; the server will not start, stop, delete or exec in it.${s.owner_hint ? `\n  hint: ${safeLine(s.owner_hint)}` : ""}`,
                ),
            ].join("\n"),
      );
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
