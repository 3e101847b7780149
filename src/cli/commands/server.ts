import type { Command } from "@commander-js/extra-typings";
import { ShedError } from "../../core/errors.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { addServer } from "../server-registry.js";
import { table } from "../table.js";

export function registerServerCommands(program: Command<[], GlobalOptions>): void {
  const server = program.command("server").description("manage the shed-servers this CLI talks to");

  server
    .command("add <host>")
    .description("add a shed-server: pins its SSH host key and registers this CLI's key with it")
    .option("--name <name>", "name for the server (default: the server's own name)")
    .option("--port <port>", "the server's HTTP port", "8080")
    .action(async (host, opts) => {
      const ctx = new CliContext(program.opts());
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new ShedError("INVALID_REQUEST", `--port ${JSON.stringify(opts.port)} is not a port number`);
      }
      const added = await addServer(ctx.cfg, host, port, opts.name);
      ctx.result(
        { name: added.name, ...added.entry, version: added.info.version },
        () =>
          `added server ${added.name} (${host}, http ${port}, ssh ${added.entry.ssh_port})${ctx.cfg.data.default_server === added.name ? " as the default" : ""}`,
      );
    });

  server
    .command("list")
    .description("list configured servers")
    .action(() => {
      const ctx = new CliContext(program.opts());
      const rows = Object.entries(ctx.cfg.data.servers).map(([name, s]) => ({
        name,
        host: s.host,
        http_port: s.http_port,
        ssh_port: s.ssh_port,
        default: ctx.cfg.data.default_server === name,
      }));
      ctx.result({ servers: rows }, () =>
        rows.length === 0
          ? "no servers configured; `shed server add HOST` adds one (without any, a local shed-server is started on demand)"
          : table(
              ["NAME", "HOST", "HTTP", "SSH", "DEFAULT"],
              rows.map((r) => [r.name, r.host, String(r.http_port), String(r.ssh_port), r.default ? "*" : ""]),
            ),
      );
    });

  server
    .command("remove <name>")
    .description("forget a server (its sheds keep running there)")
    .action((name) => {
      const ctx = new CliContext(program.opts());
      if (!ctx.cfg.data.servers[name])
        throw new ShedError("SERVER_NOT_FOUND", `no server named ${JSON.stringify(name)}`);
      delete ctx.cfg.data.servers[name];
      if (ctx.cfg.data.default_server === name) delete ctx.cfg.data.default_server;
      ctx.cfg.save();
      ctx.result({ removed: name }, () => `removed server ${name}`);
    });

  server
    .command("set-default <name>")
    .description("make a server the default")
    .action((name) => {
      const ctx = new CliContext(program.opts());
      if (!ctx.cfg.data.servers[name]) {
        throw new ShedError("SERVER_NOT_FOUND", `no server named ${JSON.stringify(name)}`, {
          hint: "`shed server list` shows the configured servers",
        });
      }
      ctx.cfg.data.default_server = name;
      ctx.cfg.save();
      ctx.result({ default_server: name }, () => `default server is now ${name}`);
    });
}
