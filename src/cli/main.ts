import { Command, CommanderError } from "@commander-js/extra-typings";
import { registerConnectCommands } from "./commands/connect.js";
import { registerDoctorCommand } from "./commands/doctor.js";
import { registerImageCommands } from "./commands/image.js";
import { registerInfoCommands } from "./commands/info.js";
import { registerProvisionCommands } from "./commands/provision.js";
import { registerServerCommands } from "./commands/server.js";
import { registerShedCommands } from "./commands/sheds.js";
import { registerSyncCommands } from "./commands/sync.js";
import { registerTunnelCommands } from "./commands/tunnels.js";
import { reportError } from "./report-error.js";
import { versionOutput } from "./version-output.js";

const program = new Command("shed")
  .description("Persistent development environments (sheds) from a repository")
  .option("--config <file>", "client config (default: $SHED_CONFIG or ~/.shed/config.yaml)")
  .option("--server <name>", "the server to talk to (default: $SHED_SERVER or the default server)")
  .option("--json", "print one JSON document on stdout (progress stays on stderr)")
  .exitOverride()
  .showSuggestionAfterError(true);

registerServerCommands(program);
registerShedCommands(program);
registerInfoCommands(program);
registerProvisionCommands(program);
registerSyncCommands(program);
registerConnectCommands(program);
registerTunnelCommands(program);
registerDoctorCommand(program);
registerImageCommands(program);
program
  .command("version")
  .description("print the CLI version")
  .action(() => {
    process.stdout.write(versionOutput(program.opts().json === true));
  });

// No top-level await: the bundle is CommonJS (see src/cli/boot.ts).
program.parseAsync().catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // commander printed its own message (usage errors, --help, --version).
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else reportError(err, program.opts().json === true);
});
