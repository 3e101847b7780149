import { join } from "node:path";
import { loadSyncFile, type SelectedFeature, SYNC_FILE_NAME, selectFeatures } from "../../config/sync-file.js";
import { type ErrorBody, type ShedError, toShedError } from "../../core/errors.js";
import type { CliContext } from "../context.js";
import { pathLines, summarize } from "./format.js";
import { runSync, type SyncReport, type SyncRequest } from "./run.js";

/** sync.yaml lives beside the client config: ~/.shed/sync.yaml, or beside $SHED_CONFIG / --config. */
export function syncFilePath(ctx: CliContext): string {
  return join(ctx.cfg.dir, SYNC_FILE_NAME);
}

/**
 * Runs a sync as a progress step ("sync") on stderr: warnings and postSync
 * output as they come, with `listPaths` a line per path, then the outcome.
 * A sync that cannot reach the shed ends the step as failed (or as a warning,
 * for create) and rethrows.
 */
export async function syncWithProgress(
  ctx: CliContext,
  req: SyncRequest,
  opts: { title: string; listPaths: boolean; failuresAreWarnings?: boolean },
): Promise<SyncReport> {
  const started = Date.now();
  ctx.out.progress({ type: "step", step: "sync", title: opts.title });
  try {
    const report = await runSync(ctx, req, {
      warning: (message) => ctx.out.progress({ type: "warning", step: "sync", message }),
      output: (text, stream) => ctx.out.progress({ type: "output", step: "sync", stream, text }),
    });
    if (opts.listPaths) {
      const text = [summarize(report), ...pathLines(report)].map((l) => `${l}\n`).join("");
      ctx.out.progress({ type: "output", step: "sync", stream: "stdout", text });
    }
    const clean = report.ok && report.warnings.length === 0;
    ctx.out.progress({
      type: "step_end",
      step: "sync",
      outcome: clean ? "succeeded" : "warning",
      duration_ms: Date.now() - started,
      message: summarize(report),
    });
    return report;
  } catch (err) {
    const e = toShedError(err);
    if (opts.failuresAreWarnings) {
      ctx.out.progress({ type: "warning", step: "sync", message: `sync failed: ${e.message}`, hint: e.hint });
    }
    ctx.out.progress({
      type: "step_end",
      step: "sync",
      outcome: opts.failuresAreWarnings ? "warning" : "failed",
      duration_ms: Date.now() - started,
      message: e.message,
    });
    throw e;
  } finally {
    ctx.out.done();
  }
}

/** What create will sync, decided before the shed is made. */
export type AutoSyncPlan =
  | { kind: "none" }
  | { kind: "invalid"; error: ShedError }
  | { kind: "run"; profile: string; features: SelectedFeature[] };

/**
 * Reads sync.yaml before create. No file, or no `default` profile, means
 * nothing to sync (silently). A profile named with --sync-profile that does
 * not exist, or an invalid file with --sync-profile, is an error now, before
 * a shed is made for nothing; an invalid file without it becomes a warning
 * after create (seed: auto-sync failures are warnings).
 */
export function prepareAutoSync(ctx: CliContext, profile: string | undefined): AutoSyncPlan {
  let selected: ReturnType<typeof selectFeatures>;
  try {
    selected = selectFeatures(loadSyncFile(syncFilePath(ctx)), { profile });
  } catch (err) {
    if (profile !== undefined) throw err;
    return { kind: "invalid", error: toShedError(err) };
  }
  if (!selected) return { kind: "none" };
  return { kind: "run", profile: selected.profile ?? profile ?? "default", features: selected.features };
}

/** Create step 9: the sync after the server returned. Never throws: every failure is a warning. */
export async function autoSync(
  ctx: CliContext,
  name: string,
  plan: AutoSyncPlan,
): Promise<SyncReport | { error: ErrorBody["error"] } | undefined> {
  if (plan.kind === "none") return undefined;
  const title = `Auto-sync${plan.kind === "run" ? ` (profile ${plan.profile})` : ""}`;
  if (plan.kind === "invalid") {
    ctx.out.progress({ type: "step", step: "sync", title });
    ctx.out.progress({
      type: "warning",
      step: "sync",
      message: plan.error.message,
      hint: `${plan.error.hint ? `${plan.error.hint}, then` : "then"} run: shed sync ${name}`,
    });
    ctx.out.progress({ type: "step_end", step: "sync", outcome: "warning", duration_ms: 0 });
    ctx.out.done();
    return { error: plan.error.toJSON() };
  }
  try {
    return await syncWithProgress(
      ctx,
      { name, profile: plan.profile, features: plan.features, dryRun: false },
      { title, listPaths: true, failuresAreWarnings: true },
    );
  } catch (err) {
    return { error: toShedError(err).toJSON() };
  }
}
