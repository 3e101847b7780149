import { readFileSync } from "node:fs";
import type { Command } from "@commander-js/extra-typings";
import { ShedError } from "../../core/errors.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { addServer } from "../server-registry.js";
import { table } from "../table.js";

/** The token from a file or stdin (-): never from a bare argument, which every local user could read with ps. */
function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    throw new ShedError("INVALID_REQUEST", `--token-file ${file}: ${(err as Error).message}`, {
      hint: "give the file `shed-server token` was saved to, or - to read the token on stdin",
    });
  }
  const token = text.trim();
  if (token === "") {
    throw new ShedError("INVALID_REQUEST", `--token-file ${file === "-" ? "- (stdin)" : file} is empty`, {
      hint: "on the server: shed-server token | shed server add HOST --token-file -",
    });
  }
  return token;
}

export function registerServerCommands(program: Command<[], GlobalOptions>): void {
  const server = program.command("server").description("manage the shed-servers this CLI talks to");

  server
    .command("add <host>")
    .description("add a shed-server: pins its SSH host key and registers this CLI's key with it")
    .option("--name <name>", "name for the server (default: the server's own name)")
    .option("--port <port>", "the server's HTTP port", "8080")
    .option(
      "--token-file <file>",
      "file holding the server's API token (`shed-server token` there); - reads stdin (default: $SHED_TOKEN)",
    )
    .option("--insecure-http", "accept a server that speaks plain HTTP off loopback (the token crosses the network)")
    .action(async (host, opts) => {
      const ctx = new CliContext(program.opts());
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new ShedError("INVALID_REQUEST", `--port ${JSON.stringify(opts.port)} is not a port number`);
      }
      const token = opts.tokenFile !== undefined ? readTokenFile(opts.tokenFile) : process.env.SHED_TOKEN || undefined;
      const added = await addServer(ctx.cfg, host, port, {
        token,
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.insecureHttp ? { insecureHttp: true } : {}),
      });
      const { token: _secret, ...shown } = added.entry;
      const tls = added.entry.tls_fingerprint ? `TLS certificate pinned: ${added.entry.tls_fingerprint}` : "plain HTTP";
      ctx.result(
        { name: added.name, ...shown, version: added.info.version },
        () =>
          `added server ${added.name} (${host}, http ${port}, ssh ${added.entry.ssh_port}; ${tls})${ctx.cfg.data.default_server === added.name ? " as the default" : ""}`,
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
        tls: s.tls_fingerprint ?? null,
        default: ctx.cfg.data.default_server === name,
      }));
      ctx.result({ servers: rows }, () =>
        rows.length === 0
          ? "no servers configured; `shed server add HOST` adds one (without any, a local shed-server is started on demand)"
          : table(
              ["NAME", "HOST", "HTTP", "SSH", "TLS", "DEFAULT"],
              rows.map((r) => [
                r.name,
                r.host,
                String(r.http_port),
                String(r.ssh_port),
                r.tls ? "pinned" : "no",
                r.default ? "*" : "",
              ]),
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
