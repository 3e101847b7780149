import { posix } from "node:path";
import { ShedError } from "../../core/errors.js";
import type { DevcontainerConfig, LifecycleCommand, LifecycleProperty } from "./parse.js";

/**
 * devcontainer.json turned into what Shed's lifecycle runs (a plan, kept in the
 * shed's record): onCreate, updateContent and postCreate form the install
 * stage (once; done only when all three succeed), postStart the startup stage,
 * postAttach runs when a user attaches. Everything Shed does not do is a
 * warning naming the key.
 */
export interface StageCommand {
  property: LifecycleProperty;
  command: LifecycleCommand;
}

export interface DevcontainerPlan {
  /** Path of devcontainer.json in the repository, e.g. ".devcontainer/devcontainer.json". */
  file: string;
  image?: string;
  /** Paths relative to the repository root. */
  build?: { dockerfile: string; context: string; args: Record<string, string>; target?: string };
  install: StageCommand[];
  startup: StageCommand[];
  attach: StageCommand[];
  containerEnv: Record<string, string>;
  /** Substituted but for ${containerEnv:VAR}, which needs the running shed's environment (resolveRemoteEnv). */
  remoteEnv: Record<string, string>;
  /** Names remoteEnv sets to null: unset for hooks and sessions. */
  remoteUnset: string[];
  remoteUser?: string;
  containerUser?: string;
  /** The user hooks run as, when not shed: remoteUser (or containerUser) found in the image at create. */
  hookUser?: string;
  forwardPorts: string[];
  /** The file's problems and what Shed did not do, as shown at create (status repeats them). */
  warnings: string[];
}

export interface MapContext {
  /** The CLI's environment, as far as the file names it (${localEnv:VAR}). */
  localEnv: Record<string, string>;
  localWorkspaceFolderBasename: string;
  localWorkspaceFolder?: string;
}

export interface MapWarning {
  message: string;
  hint: string;
}

export const CONTAINER_WORKSPACE = "/workspace";
export const INSTALL_PROPERTIES = ["onCreateCommand", "updateContentCommand", "postCreateCommand"] as const;

const NOT_DONE_WHY: Record<string, string> = {
  features: "dev container Features are not installed",
  forwardPorts: "ports are not forwarded automatically; `shed show` prints the ssh command for each",
  mounts: "extra mounts are not made",
  runArgs: "docker run arguments are not passed",
  workspaceFolder: `the workspace is always ${CONTAINER_WORKSPACE}`,
  workspaceMount: `the workspace is always Shed's own volume at ${CONTAINER_WORKSPACE}`,
  overrideCommand: "Shed always runs its own init as the container's command",
  userEnvProbe: "hooks always get a login shell's environment (the default, loginShell)",
  customizations: "editor customizations are not applied",
  appPort: "ports are not published",
  privileged: "the shed does not run privileged",
  capAdd: "no capabilities are added",
  securityOpt: "security options are not set",
  init: "Shed always runs an init (tini) in the container",
};

export function mapDevcontainer(
  config: DevcontainerConfig,
  file: string,
  ctx: MapContext,
): { plan: DevcontainerPlan; warnings: MapWarning[] } {
  if (config.compose) {
    throw new ShedError(
      "INVALID_CONFIG",
      `${file}: dockerComposeFile: Docker Compose dev containers are not supported`,
      {
        hint: "Shed makes one container per shed: use a devcontainer.json with image or build, or a .shed/provision.yaml",
      },
    );
  }
  const warnings: MapWarning[] = [];
  const sub = (text: string) => substitute(text, (kind, name, fallback) => phaseOne(kind, name, fallback, ctx));
  const plan: DevcontainerPlan = {
    file,
    install: [],
    startup: [],
    attach: [],
    containerEnv: mapValues(config.containerEnv, sub),
    remoteEnv: {},
    remoteUnset: [],
    forwardPorts: config.forwardPorts,
    warnings: [],
  };
  for (const [k, v] of Object.entries(config.remoteEnv)) {
    if (v === null) plan.remoteUnset.push(k);
    else plan.remoteEnv[k] = sub(v);
  }
  if (config.image) plan.image = config.image;
  if (config.build) {
    const dir = posix.dirname(file);
    const dockerfile = inRepo(posix.join(dir, config.build.dockerfile));
    const context = inRepo(posix.join(dir, config.build.context));
    if (!dockerfile || !context) {
      warnings.push({
        message: `${file}: build: the Dockerfile or context leaves the repository (${config.build.dockerfile}, ${config.build.context}); build ignored`,
        hint: "keep the Dockerfile and its context inside the repository",
      });
    } else {
      plan.build = { dockerfile, context, args: mapValues(config.build.args, sub) };
      if (config.build.target) plan.build.target = config.build.target;
    }
  }
  if (config.remoteUser) plan.remoteUser = config.remoteUser;
  if (config.containerUser) plan.containerUser = config.containerUser;
  for (const p of INSTALL_PROPERTIES) {
    const command = config.commands[p];
    if (command) plan.install.push({ property: p, command });
  }
  if (config.commands.postStartCommand)
    plan.startup.push({ property: "postStartCommand", command: config.commands.postStartCommand });
  if (config.commands.postAttachCommand)
    plan.attach.push({ property: "postAttachCommand", command: config.commands.postAttachCommand });
  if (config.commands.initializeCommand) {
    warnings.push({
      message: `${file}: initializeCommand was skipped: it runs on the user's own machine in the reference tool, and Shed never runs it on the server`,
      hint: "run it yourself before `shed create` if the shed needs what it makes",
    });
  }
  for (const key of config.notDone) {
    warnings.push({
      message: `${file}: ${key} is not done by Shed yet: ${NOT_DONE_WHY[key] ?? "ignored"}`,
      hint: "the rest of devcontainer.json still applies",
    });
  }
  plan.warnings = warnings.map((w) => w.message);
  return { plan, warnings };
}

/**
 * The second substitution, once the shed runs: ${containerEnv:VAR} from the
 * container's environment (containerEnv and the image's own). An unknown
 * variable becomes empty, as in the reference tool.
 */
export function resolveRemoteEnv(plan: DevcontainerPlan, containerEnv: Record<string, string>): Record<string, string> {
  const env = { ...containerEnv, ...plan.containerEnv };
  return mapValues(plan.remoteEnv, (v) =>
    substitute(v, (kind, name, fallback) =>
      kind === "containerEnv" ? (env[name ?? ""] ?? fallback ?? "") : undefined,
    ),
  );
}

/** Whether any remoteEnv value still names ${containerEnv:...}. */
export function needsContainerEnv(plan: DevcontainerPlan): boolean {
  return Object.values(plan.remoteEnv).some((v) => v.includes("${containerEnv:"));
}

type Resolver = (kind: string, name: string | undefined, fallback: string | undefined) => string | undefined;

/** Replaces ${kind} and ${kind:name[:default]}; a resolver returning undefined leaves the text as it was. */
export function substitute(text: string, resolve: Resolver): string {
  return text.replace(
    /\$\{([A-Za-z]+)(?::([^:}]*)(?::([^}]*))?)?\}/g,
    (whole, kind: string, name?: string, fallback?: string) => {
      return resolve(kind, name, fallback) ?? whole;
    },
  );
}

function phaseOne(
  kind: string,
  name: string | undefined,
  fallback: string | undefined,
  ctx: MapContext,
): string | undefined {
  switch (kind) {
    case "localEnv":
    case "env":
      return ctx.localEnv[name ?? ""] ?? fallback ?? "";
    case "containerWorkspaceFolder":
      return CONTAINER_WORKSPACE;
    case "containerWorkspaceFolderBasename":
      return posix.basename(CONTAINER_WORKSPACE);
    case "localWorkspaceFolderBasename":
      return ctx.localWorkspaceFolderBasename;
    case "localWorkspaceFolder":
      return ctx.localWorkspaceFolder ?? "";
    case "containerEnv":
      return undefined;
    default:
      // An unknown variable becomes empty, as in the reference tool.
      return "";
  }
}

/** The names of local environment variables a devcontainer.json refers to (the CLI sends only those). */
export function localEnvNames(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\$\{(?:localEnv|env):([A-Za-z_][A-Za-z0-9_]*)/g)) if (m[1]) names.add(m[1]);
  return [...names];
}

function inRepo(path: string): string | undefined {
  const p = posix.normalize(path);
  if (p.startsWith("/") || p === ".." || p.startsWith("../")) return undefined;
  return p;
}

function mapValues(o: Record<string, string | null>, f: (v: string) => string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null) out[k] = f(v);
  return out;
}
