import type { Command } from "@commander-js/extra-typings";
import { ShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { table } from "../table.js";
import { listTunnels, plannedMappings, startTunnels, stopShedTunnels } from "../tunnels/tunnel-ops.js";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** shed tunnels start|list|stop|config: local ports forwarded to a shed's loopback over its SSH. */
export function registerTunnelCommands(program: Command<[], GlobalOptions>): void {
  const tunnels = program
    .command("tunnels")
    .description(
      "forward local ports (127.0.0.1) to ports in a shed over its SSH; a tunnel never starts a stopped shed",
    );

  tunnels
    .command("start <name>")
    .description("forward ports to the shed: in the foreground until Ctrl-C, or with --background")
    .option("-t, --tunnel <LOCAL:REMOTE|PORT>", "a port to forward (repeatable): PORT, or LOCAL:REMOTE", collect)
    .option("-p, --profile <name>", "a profile from tunnels: in the client config (repeatable, merged)", collect)
    .option("--background", "keep the tunnels running after this command returns (one ssh process per shed)")
    .option("--replace", "stop the shed's tunnels first, so these replace them (else they are added)")
    .action(async (name, opts) => startTunnels(new CliContext(program.opts()), name, opts));

  tunnels
    .command("list")
    .description("every tunnel with its status, checked: active (its ssh runs and holds the port) or dead")
    .action(async () => {
      const ctx = new CliContext(program.opts());
      const rows = await listTunnels(ctx);
      const servers = new Set(rows.map((r) => r.server));
      ctx.result({ tunnels: rows }, () =>
        rows.length === 0
          ? "no tunnels; start one with `shed tunnels start NAME -t PORT`"
          : table(
              ["SHED", "LOCAL", "REMOTE", "STATUS", ...(servers.size > 1 ? ["SERVER"] : [])],
              rows.map((r) => [
                r.shed,
                `127.0.0.1:${r.local}`,
                String(r.remote),
                r.background ? r.status : `${r.status} (foreground)`,
                ...(servers.size > 1 ? [r.server] : []),
              ]),
            ),
      );
    });

  tunnels
    .command("stop [name]")
    .description("stop a shed's tunnels, or every tunnel with --all")
    .option("--all", "every shed's tunnels")
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      if ((name === undefined) === (opts.all !== true)) {
        throw new ShedError("INVALID_REQUEST", "give a shed NAME or --all (one of them)", {
          hint: "shed tunnels stop NAME stops one shed's tunnels; shed tunnels stop --all stops every one",
        });
      }
      if (name !== undefined) validateShedName(name);
      const stopped = await stopShedTunnels(
        ctx,
        name === undefined ? "all" : { shed: name, server: ctx.cfg.pick(ctx.opts.server)?.name },
      );
      ctx.result({ stopped }, () =>
        stopped.length === 0
          ? `no tunnels${name ? ` of ${name}` : ""} to stop`
          : stopped.map((e) => `stopped 127.0.0.1:${e.local} -> ${e.shed}:${e.remote}`).join("\n"),
      );
    });

  tunnels
    .command("config <name>")
    .description("print the mappings `shed tunnels start NAME` would set up with these -t and -p (starts nothing)")
    .option("-t, --tunnel <LOCAL:REMOTE|PORT>", "a port to forward (repeatable): PORT, or LOCAL:REMOTE", collect)
    .option("-p, --profile <name>", "a profile from tunnels: in the client config (repeatable, merged)", collect)
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      const mappings = plannedMappings(ctx, opts);
      ctx.result({ shed: name, tunnels: mappings }, () =>
        table(
          ["LOCAL", "REMOTE", "FROM"],
          mappings.map((m) => [`127.0.0.1:${m.local}`, `${name}:${m.remote}`, m.from]),
        ),
      );
    });
}
