import { Command } from "@commander-js/extra-typings";
import { loadServerConfig } from "../config/server-config.js";
import { toShedError } from "../core/errors.js";
import { VERSION } from "../core/version.js";
import { startServer } from "./server.js";

const program = new Command("shed-server").description("Runs sheds on this machine: HTTP API and SSH").version(VERSION);

program
  .command("serve")
  .description("serve the API and SSH until stopped (SIGINT/SIGTERM)")
  .option("--config <file>", "server config YAML (defaults apply without one)", process.env.SHED_SERVER_CONFIG)
  .action(async (opts) => {
    try {
      const config = loadServerConfig(opts.config);
      const server = await startServer(config);
      // One line on stdout that scripts (and the CLI's on-demand start) wait for.
      process.stdout.write(
        `${JSON.stringify({ ready: true, name: config.name, http_port: server.httpPort, ssh_port: server.sshPort, bind: config.bind })}\n`,
      );
      const shutdown = () => {
        void server.close().then(() => process.exit(0));
      };
      process.on("SIGINT", shutdown);
      process.on("SIGTERM", shutdown);
    } catch (err) {
      const e = toShedError(err);
      process.stderr.write(`shed-server: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ""}`);
      process.exit(1);
    }
  });

program
  .command("check-config")
  .description("validate a server config and print it with defaults applied")
  .requiredOption("--config <file>", "server config YAML")
  .action((opts) => {
    try {
      process.stdout.write(`${JSON.stringify(loadServerConfig(opts.config), null, 2)}\n`);
    } catch (err) {
      const e = toShedError(err);
      process.stderr.write(`shed-server: ${e.message}\n`);
      process.exit(1);
    }
  });

await program.parseAsync();
