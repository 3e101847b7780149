import type { Command } from "@commander-js/extra-typings";
import { DEFAULT_PROFILE, loadSyncFile, selectFeatures } from "../../config/sync-file.js";
import { ShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import type { Shed } from "../../core/types.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { syncFilePath, syncWithProgress } from "../sync/auto.js";
import { formatReport } from "../sync/format.js";

const EXAMPLE =
  "features: {git: {paths: [{source: ~/.gitconfig, target: ~/.gitconfig}]}}, profiles: {default: {features: [git]}}";

/** sync: copy files from this machine into a shed on demand, as sync.yaml says (create does it after create). */
export function registerSyncCommands(program: Command<[], GlobalOptions>): void {
  program
    .command("sync <name>")
    .description(
      "copy files from this machine into a shed as sync.yaml (beside the client config) says: only what changed, then postSync",
    )
    .option("--profile <profile>", `the sync.yaml profile to sync (default: ${DEFAULT_PROFILE})`)
    .option(
      "--feature <feature>",
      "sync this feature instead of a profile (repeatable)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option("--dry-run", "list what would be copied and what is up to date, and change nothing")
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      if (opts.profile !== undefined && opts.feature.length > 0) {
        throw new ShedError("INVALID_REQUEST", "--profile and --feature cannot be used together", {
          hint: "--feature picks features directly, instead of a profile's list",
        });
      }
      const file = syncFilePath(ctx);
      const sync = loadSyncFile(file);
      if (!sync.exists) {
        throw new ShedError("INVALID_CONFIG", `there is no sync file ${file}`, {
          hint: `create it, e.g. ${EXAMPLE}`,
        });
      }
      const selected = selectFeatures(sync, { profile: opts.profile, features: opts.feature });
      if (!selected) {
        const profiles = Object.keys(sync.data.profiles);
        throw new ShedError("INVALID_REQUEST", `${file} has no profile named ${JSON.stringify(DEFAULT_PROFILE)}`, {
          hint: `pass --profile NAME${profiles.length ? ` (profiles: ${profiles.join(", ")})` : ""} or --feature NAME, or add profiles.${DEFAULT_PROFILE}`,
        });
      }
      const { api } = await ctx.server();
      // A clear SHED_NOT_FOUND before any SSH; a stopped shed is started by the SSH endpoint, as for exec.
      await api.json<Shed>("GET", `/api/sheds/${name}`);
      const dryRun = opts.dryRun === true;
      const what =
        selected.profile !== undefined
          ? `profile ${selected.profile}`
          : `${selected.features.length > 1 ? "features" : "feature"} ${selected.features.map((f) => f.name).join(", ")}`;
      const report = await syncWithProgress(
        ctx,
        { name, profile: selected.profile, features: selected.features, dryRun },
        { title: `${dryRun ? "Comparing" : "Syncing"} ${what} ${dryRun ? "with" : "into"} ${name}`, listPaths: false },
      );
      ctx.result(report, () => formatReport(report));
      // Missing sources are warnings; a copy or a postSync command that failed fails the command.
      if (!report.ok) process.exitCode = 1;
    });
}
