import {
  describeProblems,
  type HookName,
  PROVISION_PATH,
  type ProvisionConfig,
  parseProvision,
  provisionTooLarge,
} from "../config/provision-file.js";
import { describeStageFailure, STAGE_RUNNER } from "../guest/devcontainer-stage.js";
import type { GuestExec } from "../guest/exec.js";
import { ALREADY_DONE, type HookRun, type HookRunRequest, runHook } from "../guest/hook-runner.js";
import { INSTALL_STATE_FILE } from "../guest/install-state.js";
import {
  addedEntries,
  type PathSnapshot,
  parsePathProbe,
  persistInstalledPath,
  snapshotPath,
} from "../guest/path-capture.js";
import { readWorkspaceProvision } from "../guest/provision-reader.js";
import { useDevcontainer } from "./devcontainer-provision.js";
import type { MetaStore } from "./meta-store.js";
import type { Step, StepIO, StepRun } from "./steps.js";

/** What the provisioning steps need, whichever lifecycle runs them. */
export interface ProvisionState {
  name: string;
  guest: GuestExec;
  meta: MetaStore;
  /** SHED_* and the server's env_file; the provision file's env is added on top. */
  baseEnv: Record<string, string>;
  noProvision: boolean;
  stopTimeoutMs: number;
  /** Each hook log's cap on disk (server config hook_log_max_size). */
  hookLogMaxBytes?: number;
  /** Re-run install even when the state file says it ran (`shed provision`). */
  forceInstall?: boolean;
  /** Create knows the workspace is a fresh, empty volume: there is no file to read. */
  workspaceEmpty?: boolean;
  config?: ProvisionConfig;
  /** From the provision read: true or false when it looked at the state file, undefined when not. */
  installDone?: boolean;
  installSucceeded?: boolean;
  /** The PATH probe the install's run took after the hook succeeded (or why it could not). */
  pathAfter?: PathSnapshot | Error;
  /** devcontainer.json's stages (guest/devcontainer-stage.ts encoding), run instead of provision.yaml's scripts. */
  stages?: Partial<Record<HookName, string>>;
  /** devcontainer.json's remoteUser, when the image has it: hooks run as that user. */
  hookUser?: string;
}

type P = { prov: ProvisionState };

/** The shutdown hook's budget (seed): half the stop timeout, at most 30 s. */
export function shutdownBudgetMs(stopTimeoutMs: number): number {
  return Math.min(Math.floor(stopTimeoutMs / 2), 30_000);
}

export const READ_PROVISION_STEP: Step<P> = {
  id: "provision_file",
  title: "Read .shed/provision.yaml",
  fatal: false,
  async run({ prov }, io) {
    const { text, installDone, tooLarge } = prov.workspaceEmpty
      ? { text: undefined, installDone: false, tooLarge: false }
      : await readWorkspaceProvision(prov.guest);
    prov.installDone = installDone;
    prov.stages = undefined;
    prov.hookUser = undefined;
    if (text === undefined && !tooLarge) {
      // No provision.yaml: the devcontainer.json read at create, if there was one (provision.yaml wins).
      const dc = await useDevcontainer(prov, io, recordFile);
      if (dc) return dc;
      prov.config = undefined;
      recordFile(prov, false, [], {});
      return { outcome: "skipped", reason: `no ${PROVISION_PATH} in the workspace` };
    }
    const { config, problems } = text === undefined ? provisionTooLarge() : parseProvision(text);
    const warnings = describeProblems(problems);
    for (const w of warnings) io.warn(w, `fix ${PROVISION_PATH}; the rest of the file still applies`);
    prov.config = config;
    recordFile(prov, true, warnings, config.env);
    const hooks = Object.keys(config.hooks);
    const envCount = Object.keys(config.env).length;
    return {
      outcome: "done",
      message: `hooks: ${hooks.length ? hooks.join(", ") : "none"}; ${envCount} env variable${envCount === 1 ? "" : "s"}`,
    };
  },
};

export const INSTALL_STEP: Step<P> = {
  id: "install_hook",
  title: "Install hook",
  fatal: false,
  async run({ prov }, io) {
    const pre = preflight(prov, "install");
    if (pre) return pre;
    if (!prov.forceInstall && prov.installDone) return skip(prov, "install", ALREADY_DONE, false);
    // The PATH before the install and after it, taken in the install's own exec, so PATH capture can
    // say what the install added. Unless forced, the run itself looks at the state file first.
    const run = await runRecorded(prov, "install", io, {
      stateFile: INSTALL_STATE_FILE,
      skipIfDone: !prov.forceInstall,
      onPathProbe: (when, output) => {
        let snapshot: PathSnapshot | Error;
        try {
          snapshot = parsePathProbe(output);
        } catch (err) {
          snapshot = err as Error;
        }
        if (when === "after") prov.pathAfter = snapshot;
        else if (!(snapshot instanceof Error)) {
          prov.meta.update(prov.name, (m) => {
            m.provision.path_baseline = snapshot.login;
            m.provision.path_image = snapshot.image;
          });
        }
      },
    });
    if (run.state === "skipped") return { outcome: "skipped", reason: ALREADY_DONE };
    if (run.state === "succeeded") {
      prov.installSucceeded = true;
      return ranFine(run);
    }
    return undefined;
  },
};

export const PATH_CAPTURE_STEP: Step<P> = {
  id: "path_capture",
  title: "PATH capture",
  fatal: false,
  async run({ prov }) {
    if (!prov.installSucceeded)
      return { outcome: "skipped", reason: "the install hook did not run or did not succeed" };
    const meta = prov.meta.read(prov.name);
    if (prov.pathAfter instanceof Error) throw prov.pathAfter;
    const after = prov.pathAfter ?? (await snapshotPath(prov.guest, hookEnv(prov), prov.hookUser));
    const baseline = meta.provision.path_baseline ?? after.image;
    const added = addedEntries(baseline, after.login, after.miseShims);
    // Nothing added and nothing written before: the guest already has no entries to prepend.
    if (added.length > 0 || after.listed) await persistInstalledPath(prov.guest, added);
    prov.meta.update(prov.name, (m) => {
      m.provision.path_added = added;
      m.provision.path_image = after.image;
    });
    return {
      outcome: "done",
      message: added.length ? `install added ${added.join(", ")}` : "the install added no PATH entries",
    };
  },
};

export const STARTUP_STEP: Step<P> = {
  id: "startup_hook",
  title: "Startup hook",
  fatal: false,
  async run({ prov }, io) {
    const pre = preflight(prov, "startup");
    if (pre) return pre;
    const run = await runRecorded(prov, "startup", io);
    return run.state === "succeeded" ? ranFine(run) : undefined;
  },
};

export const SHUTDOWN_STEP: Step<P> = {
  id: "shutdown_hook",
  title: "Shutdown hook",
  fatal: false,
  async run({ prov }, io) {
    if (!prov.config?.hooks.shutdown) return skip(prov, "shutdown", "no shutdown hook", false);
    const budget = shutdownBudgetMs(prov.stopTimeoutMs);
    const run = await runRecorded(prov, "shutdown", io, { limitMs: budget });
    return run.state === "succeeded"
      ? { outcome: "done", message: `${formatMs(run.duration_ms)} of a ${formatMs(budget)} budget` }
      : undefined;
  },
};

/** `shed provision NAME`: install (ignoring the state file), PATH capture, startup. */
export const PROVISION_STEPS: readonly Step<P>[] = [READ_PROVISION_STEP, INSTALL_STEP, PATH_CAPTURE_STEP, STARTUP_STEP];

/** `shed provision NAME --hook H`. */
export const HOOK_STEPS: Record<HookName, Step<P>> = {
  install: INSTALL_STEP,
  startup: STARTUP_STEP,
  shutdown: SHUTDOWN_STEP,
};

/** What the provision file says, in the record: written only when it changed (each write is fsynced). */
export function recordFile(
  prov: ProvisionState,
  found: boolean,
  warnings: string[],
  env: Record<string, string>,
  source?: string,
): void {
  const now = { found, warnings, env, source };
  const { provision } = prov.meta.read(prov.name);
  const was = { found: provision.found, warnings: provision.warnings, env: provision.env, source: provision.source };
  if (JSON.stringify(was) === JSON.stringify(now)) return;
  prov.meta.update(prov.name, (m) => {
    m.provision = { ...m.provision, ...now };
  });
}

function preflight(prov: ProvisionState, hook: HookName): StepRun | undefined {
  if (prov.noProvision) return skip(prov, hook, "--no-provision", true);
  if (!prov.config) return skip(prov, hook, `no ${PROVISION_PATH}`, false);
  if (!prov.config.hooks[hook]) {
    const source = prov.stages ? "devcontainer.json" : PROVISION_PATH;
    return skip(prov, hook, `no ${hook} ${prov.stages ? "stage" : "hook"} in ${source}`, false);
  }
  return undefined;
}

function skip(prov: ProvisionState, hook: HookName, reason: string, record: boolean): StepRun {
  if (record) {
    prov.meta.update(prov.name, (m) => {
      m.hooks[hook] = { ...m.hooks[hook], state: "skipped", message: reason };
    });
  }
  return { outcome: "skipped", reason };
}

function hookEnv(prov: ProvisionState): Record<string, string> {
  return { ...prov.baseEnv, ...(prov.config?.env ?? {}) };
}

type RunOptions = Pick<HookRunRequest, "stateFile" | "skipIfDone" | "onPathProbe"> & { limitMs?: number };

/**
 * Runs a hook, keeping its state in the meta store (running, then the outcome) and warning on failure.
 * A run that found the install already done leaves the record as it was.
 */
async function runRecorded(prov: ProvisionState, hook: HookName, io: StepIO, opts: RunOptions = {}): Promise<HookRun> {
  const { limitMs, ...rest } = opts;
  const script = prov.config?.hooks[hook] ?? "";
  const stage = prov.stages?.[hook];
  const timeoutMs = limitMs ?? prov.config?.timeoutMs ?? 30 * 60_000;
  let previous: HookRun | undefined;
  prov.meta.update(prov.name, (m) => {
    previous = m.hooks[hook];
    m.hooks[hook] = { state: "running", started_at: new Date().toISOString(), log: m.hooks[hook].log, script };
  });
  const run = await runHook(prov.guest, {
    hook,
    script,
    timeoutMs,
    env: hookEnv(prov),
    onOutput: (text) => io.output("stdout", text),
    signal: io.signal,
    ...rest,
    ...(prov.hookLogMaxBytes ? { logMaxBytes: prov.hookLogMaxBytes } : {}),
    ...(stage ? { inline: { script: STAGE_RUNNER, arg: stage } } : {}),
    ...(prov.hookUser ? { user: prov.hookUser } : {}),
  });
  // A devcontainer.json stage says which property failed ("devcontainer.json: postCreateCommand failed with exit code 2").
  const failed = stage && run.state === "failed" ? describeStageFailure(run.tail) : undefined;
  if (failed) run.message = failed;
  prov.meta.update(prov.name, (m) => {
    m.hooks[hook] = run.state === "skipped" && previous ? previous : run;
  });
  if (run.state !== "succeeded" && run.state !== "skipped") {
    const what =
      run.state === "timed_out"
        ? `${hook} hook (${script}) ${run.message}`
        : failed
          ? `${hook} stage: ${failed}`
          : `${hook} hook (${script}) failed: ${run.message ?? `exit ${run.exit_code}`}`;
    const last = run.tail?.length ? `\n      last output:\n        ${run.tail.slice(-5).join("\n        ")}` : "";
    io.warn(
      `${what}; log: ${run.log}${last}`,
      hook === "install"
        ? "fix the script and run `shed provision NAME` (the install is not marked done)"
        : hook === "shutdown"
          ? "the shed stopped anyway; see the log with `shed logs NAME shutdown`"
          : `see \`shed logs NAME ${hook}\`; rerun with \`shed provision NAME --hook ${hook}\``,
    );
  }
  return run;
}

/** How a hook that succeeded is reported at the end of its step. */
function ranFine(run: HookRun): StepRun {
  return { outcome: "done", message: `${formatMs(run.duration_ms)}; log ${run.log}` };
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "";
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}
