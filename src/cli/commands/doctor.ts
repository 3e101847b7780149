import type { Command } from "@commander-js/extra-typings";
import { renderReport } from "../../core/doctor-report.js";
import { ClientConfig } from "../client-config.js";
import type { GlobalOptions } from "../context.js";
import { runClientDoctor } from "../doctor/client-doctor.js";
import { printResult } from "../result.js";

/** `shed doctor [--json]`: exits 1 when a check fails. */
export function registerDoctorCommand(program: Command<[], GlobalOptions>): void {
  program
    .command("doctor")
    .description("check the configured servers (reachable, pinned keys, token), ssh and the ssh-config block")
    .action(async () => {
      const opts = program.opts();
      const result = await runClientDoctor(ClientConfig.load(ClientConfig.locate(opts.config)));
      printResult(opts.json === true, result, () => renderReport(result));
      if (!result.ok) process.exitCode = 1;
    });
}
