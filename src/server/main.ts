import { Command, Option } from "@commander-js/extra-typings";
import { loadServerConfig } from "../config/server-config.js";
import { loadOrCreateApiToken } from "../core/api-token.js";
import { renderReport } from "../core/doctor-report.js";
import { toShedError } from "../core/errors.js";
import { VERSION } from "../core/version.js";
import { runServerDoctor } from "./doctor/run-doctor.js";
import { startServer } from "./server.js";
import { installService, uninstallService } from "./service-install.js";
import { runSetupCommand } from "./setup-command.js";
import { buildVmPlan } from "./vm-plan-command.js";

const program = new Command("shed-server").description("Runs sheds on this machine: HTTP API and SSH").version(VERSION);

program
  .command("serve")
  .description("serve the API and SSH until stopped (SIGINT/SIGTERM)")
  .option("--config <file>", "server config YAML (defaults apply without one)", process.env.SHED_SERVER_CONFIG)
  .action(async (opts) => {
    try {
      const config = loadServerConfig(opts.config);
      const server = await startServer(config);
      const { transport } = server;
      for (const line of server.recovered) process.stderr.write(`shed-server: recovery: ${line}\n`);
      if (transport.kind === "http" && transport.warning)
        process.stderr.write(`shed-server: WARNING: ${transport.warning}\n`);
      if (transport.kind === "tls") {
        process.stderr.write(
          `shed-server: API on https://${config.bind}:${server.httpPort}, certificate ${transport.fingerprint}${transport.selfSigned ? " (self-signed, made once in data_dir/tls)" : ""}\n`,
        );
      }
      // One line on stdout that scripts (and the CLI's on-demand start) wait for.
      process.stdout.write(
        `${JSON.stringify({
          ready: true,
          name: config.name,
          http_port: server.httpPort,
          ssh_port: server.sshPort,
          bind: config.bind,
          tls: transport.kind === "tls",
          ...(transport.kind === "tls" ? { tls_fingerprint: transport.fingerprint } : {}),
        })}\n`,
      );
      const shutdown = () => {
        void server.close().then(() => process.exit(0));
      };
      process.on("SIGINT", shutdown);
      process.on("SIGTERM", shutdown);
    } catch (err) {
      fail(err);
    }
  });

program
  .command("token")
  .description("print the API token that clients need (made on first use, kept in data_dir/api_token)")
  .option("--config <file>", "server config YAML (defaults apply without one)", process.env.SHED_SERVER_CONFIG)
  .action((opts) => {
    try {
      const config = loadServerConfig(opts.config);
      process.stdout.write(`${loadOrCreateApiToken(config.dataDir)}\n`);
      if (process.stdout.isTTY) {
        process.stderr.write(
          "give it to the CLI without a command-line argument: shed-server token | shed server add HOST --token-file -\n",
        );
      }
    } catch (err) {
      fail(err);
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
      fail(err);
    }
  });

program
  .command("setup")
  .description("as root: make the host network Firecracker sheds need (bridge, IPv4 forwarding, NAT); idempotent")
  .option("--dry-run", "print what would change and change nothing")
  .option("--config <file>", "server config YAML (defaults apply without one)", process.env.SHED_SERVER_CONFIG)
  // Tests only: do it all inside this network namespace.
  .addOption(new Option("--netns <name>").hideHelp())
  .action(async (opts) => {
    try {
      const config = loadServerConfig(opts.config);
      const code = await runSetupCommand({
        bridge: config.vm.bridge,
        subnet: config.vm.subnet,
        dryRun: opts.dryRun === true,
        ...(opts.netns === undefined ? {} : { netns: opts.netns }),
        out: (line) => process.stdout.write(`${line}\n`),
      });
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  });

program
  .command("vm-plan")
  .description("print, as JSON, the argv and (Firecracker) API requests that booting a shed would use; starts nothing")
  .requiredOption("--backend <backend>", "firecracker or vz")
  .argument("<name>", "the shed's name")
  .option("--cpus <n>", "virtual CPUs (default: vm_cpus)")
  .option("--memory <size>", "memory in MiB or with a unit, e.g. 2GiB (default: vm_memory)")
  .option("--image <name>", "VM image name (default: vm_image)")
  .option("--local-dir <dir>", "a directory to share at /workspace (vz only)")
  .option("--config <file>", "server config YAML (defaults apply without one)", process.env.SHED_SERVER_CONFIG)
  .action((name, opts) => {
    try {
      const config = loadServerConfig(opts.config);
      const plan = buildVmPlan(config, {
        backend: opts.backend,
        name,
        ...(opts.cpus === undefined ? {} : { cpus: opts.cpus }),
        ...(opts.memory === undefined ? {} : { memory: opts.memory }),
        ...(opts.image === undefined ? {} : { image: opts.image }),
        ...(opts.localDir === undefined ? {} : { localDir: opts.localDir }),
      });
      process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command("doctor")
  .description("check what this server and each enabled backend need; exits 1 when something cannot work")
  .option("--config <file>", "server config YAML (defaults apply without one)", process.env.SHED_SERVER_CONFIG)
  .option("--json", "print the checks as one JSON document")
  .action(async (opts) => {
    try {
      const result = await runServerDoctor(loadServerConfig(opts.config));
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : renderReport(result));
      process.exit(result.ok ? 0 : 1);
    } catch (err) {
      fail(err);
    }
  });

program
  .command("install")
  .description("run shed-server as a systemd service: write the unit, enable and start it (as root)")
  .option("--config <file>", "server config YAML the service runs with (defaults apply without one)")
  .option("--user <name>", "the user the service runs as (default: you; under sudo, the user who ran sudo)")
  .option("--unit-dir <dir>", "where the unit file goes", "/etc/systemd/system")
  // Tests only: systemd's runtime dir and systemctl, so no test touches the host's systemd.
  .addOption(new Option("--systemd-run-dir <dir>").default("/run/systemd/system").hideHelp())
  .addOption(new Option("--systemctl <program>").default("systemctl").hideHelp())
  .action(async (opts) => {
    try {
      await installService({
        config: opts.config,
        ...(opts.user === undefined ? {} : { user: opts.user }),
        unitDir: opts.unitDir,
        systemdRunDir: opts.systemdRunDir,
        systemctl: opts.systemctl,
        out: (line) => process.stdout.write(`${line}\n`),
      });
    } catch (err) {
      fail(err);
    }
  });

program
  .command("uninstall")
  .description("stop and disable the systemd service and remove its unit (sheds keep running)")
  .option("--unit-dir <dir>", "where the unit file is", "/etc/systemd/system")
  .addOption(new Option("--systemd-run-dir <dir>").default("/run/systemd/system").hideHelp())
  .addOption(new Option("--systemctl <program>").default("systemctl").hideHelp())
  .action((opts) => {
    try {
      uninstallService({
        unitDir: opts.unitDir,
        systemdRunDir: opts.systemdRunDir,
        systemctl: opts.systemctl,
        out: (line) => process.stdout.write(`${line}\n`),
      });
    } catch (err) {
      fail(err);
    }
  });

function fail(err: unknown): never {
  const e = toShedError(err);
  process.stderr.write(`shed-server: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ""}`);
  process.exit(1);
}

await program.parseAsync();
