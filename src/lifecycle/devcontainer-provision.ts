import { posix } from "node:path";
import {
  type DevcontainerPlan,
  needsContainerEnv,
  resolveRemoteEnv,
  type StageCommand,
} from "../config/devcontainer/map.js";
import { DEFAULT_HOOK_TIMEOUT_MS, type HookName } from "../config/provision-file.js";
import { encodeStage } from "../guest/devcontainer-stage.js";
import { runCollect } from "../guest/exec.js";
import { HOOK_LOG_DIR } from "../guest/hook-runner.js";
import { INSTALL_STATE_FILE } from "../guest/install-state.js";
import type { ProvisionState } from "./provision-steps.js";
import type { StepIO, StepRun } from "./steps.js";

type Record_ = (
  prov: ProvisionState,
  found: boolean,
  warnings: string[],
  env: Record<string, string>,
  source?: string,
) => void;

/**
 * The provisioning of a shed whose repository had a devcontainer.json and no
 * .shed/provision.yaml at create: its stages become the install and startup
 * hooks (same runner, log, timeout, state file and PATH capture), remoteEnv
 * their environment and that of exec, console and SSH.
 */
export async function useDevcontainer(prov: ProvisionState, io: StepIO, record: Record_): Promise<StepRun | undefined> {
  const plan = prov.meta.read(prov.name).devcontainer;
  if (!plan) return undefined;
  // ${containerEnv:VAR} of a variable the file does not set (PATH, say) is the running container's own.
  const containerEnv = needsContainerEnv(plan) ? await guestEnvironment(prov) : {};
  const env = resolveRemoteEnv(plan, containerEnv);
  const hooks: Partial<Record<HookName, string>> = {};
  const stages: Partial<Record<HookName, string>> = {};
  for (const [hook, commands] of [
    ["install", plan.install],
    ["startup", plan.startup],
  ] as const) {
    if (!commands.length) continue;
    hooks[hook] = stageLabel(plan, commands);
    stages[hook] = encodeStage(commands);
  }
  prov.config = { hooks, env, timeoutMs: DEFAULT_HOOK_TIMEOUT_MS };
  prov.stages = stages;
  const hookUser = await lifecycleUser(prov, plan, io);
  if (hookUser) prov.hookUser = hookUser;
  record(prov, true, plan.warnings ?? [], env, plan.file);
  const names = Object.entries(hooks).map(([h, label]) => `${h} = ${label.slice(plan.file.length + 2)}`);
  const envCount = Object.keys(env).length;
  return {
    outcome: "done",
    message: `${plan.file} (no .shed/provision.yaml): ${names.length ? names.join("; ") : "no lifecycle commands"}; ${envCount} remoteEnv variable${envCount === 1 ? "" : "s"}`,
  };
}

/**
 * The user the lifecycle commands run as: remoteUser (else containerUser) when
 * the image has it, checked at each provisioning with the folders hook runs
 * write to (logs, install state) made that user's in the same exec: a VM's
 * boot gives them back to shed. Without the user, they run as shed, with a
 * warning; the record keeps which it was.
 */
async function lifecycleUser(prov: ProvisionState, plan: DevcontainerPlan, io: StepIO): Promise<string | undefined> {
  const wanted = plan.remoteUser ?? plan.containerUser;
  if (!wanted || wanted === "shed") return undefined;
  const r = await runCollect(prov.guest, {
    argv: [
      "sh",
      "-c",
      'id -u -- "$1" >/dev/null 2>&1 || exit 3; chown -- "$1" "$2" "$3"',
      "shed-user",
      wanted,
      HOOK_LOG_DIR,
      posix.dirname(INSTALL_STATE_FILE),
    ],
    user: "root",
  });
  const found = r.exitCode === 0 ? wanted : "";
  if (!found) {
    io.warn(
      `${plan.file}: remoteUser/containerUser ${JSON.stringify(wanted)} does not exist in the image${r.exitCode === 3 ? "" : ` (${r.stderr.trim() || `exit ${r.exitCode}`})`}; the lifecycle commands run as user shed`,
      "use an image that has the user, or build one FROM shed-base:latest that adds it",
    );
  }
  if (plan.hookUser !== found) {
    prov.meta.update(prov.name, (m) => {
      if (m.devcontainer) m.devcontainer.hookUser = found;
    });
  }
  return found || undefined;
}

/** What status shows as a stage's script: the file and its properties, e.g. "devcontainer.json: onCreateCommand, postCreateCommand". */
export function stageLabel(plan: DevcontainerPlan, commands: readonly StageCommand[]): string {
  return `${plan.file}: ${commands.map((c) => c.property).join(", ")}`;
}

async function guestEnvironment(prov: ProvisionState): Promise<Record<string, string>> {
  const r = await runCollect(prov.guest, { argv: ["env", "-0"], user: "root" });
  const env: Record<string, string> = {};
  if (r.exitCode !== 0) return env;
  for (const entry of r.stdout.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
