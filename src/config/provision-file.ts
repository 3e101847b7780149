import { posix } from "node:path";
import { z } from "zod";
import { tryParseDuration } from "../core/duration.js";
import { durationString } from "../core/duration-schema.js";
import { type ConfigProblem, formatProblem, parseYamlWithSchema } from "./yaml-source.js";

/**
 * `.shed/provision.yaml`: how a repository sets up its shed. Problems are
 * warnings (seed: Error Handling), so parsing never throws: each problem is
 * reported as `provision.yaml:LINE:COL` and only the part it affects is refused,
 * the rest still applies.
 */
export const PROVISION_PATH = ".shed/provision.yaml";
export const HOOK_NAMES = ["install", "startup", "shutdown"] as const;
export type HookName = (typeof HOOK_NAMES)[number];
export const DEFAULT_HOOK_TIMEOUT_MS = 30 * 60_000;
/** The largest provision.yaml Shed reads: a hook can grow the file, and it is read on every start and stop. */
export const PROVISION_MAX_BYTES = 1024 * 1024;

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const hookPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/"), { message: "must be a path relative to the repository root" })
  // By path segment: "..tools/x" is a directory named "..tools", inside the workspace.
  .refine((p) => posix.normalize(p).split("/")[0] !== "..", { message: "leaves the workspace" });

export const provisionSchema = z
  .object({
    hooks: z
      .object({
        install: hookPath.describe("Script that runs once on shed create (relative to the repository root)").optional(),
        startup: hookPath.describe("Script that runs on every start").optional(),
        shutdown: hookPath.describe("Script that runs before shed stop and shed delete").optional(),
      })
      .strict()
      .describe("Scripts run as user shed with bash --login -c, in /workspace")
      .optional(),
    env: z
      .record(
        z.string().regex(ENV_NAME_RE, { message: "is not a valid environment variable name" }),
        z.union([z.string(), z.number(), z.boolean()]),
      )
      .describe("Environment variables for hooks, shed exec, shed console and SSH sessions")
      .optional(),
    timeout: durationString
      .describe("Time limit of each hook, e.g. 90s, 30m or 2h (default 30m, at most 7d)")
      .optional(),
  })
  .strict();

export interface ProvisionConfig {
  hooks: Partial<Record<HookName, string>>;
  env: Record<string, string>;
  timeoutMs: number;
}

export interface ProvisionParse {
  config: ProvisionConfig;
  problems: ConfigProblem[];
}

export const EMPTY_PROVISION: ProvisionConfig = { hooks: {}, env: {}, timeoutMs: DEFAULT_HOOK_TIMEOUT_MS };

export function parseProvision(text: string, file = PROVISION_PATH): ProvisionParse {
  if (Buffer.byteLength(text) > PROVISION_MAX_BYTES) return provisionTooLarge(file);
  const strict = parseYamlWithSchema(text, file, provisionSchema);
  if (strict.ok) {
    const v = strict.value;
    return {
      config: {
        hooks: { ...v.hooks },
        env: Object.fromEntries(Object.entries(v.env ?? {}).map(([k, val]) => [k, String(val)])),
        timeoutMs: v.timeout ? (tryParseDuration(v.timeout) ?? DEFAULT_HOOK_TIMEOUT_MS) : DEFAULT_HOOK_TIMEOUT_MS,
      },
      problems: [],
    };
  }
  const problems = strict.problems;
  if (problems.some((p) => p.message.startsWith("YAML syntax"))) return { config: EMPTY_PROVISION, problems };
  // Keep what is valid; refuse exactly the parts a problem points at.
  const refused = new Set(problems.map((p) => p.path));
  const isRefused = (path: string) => [...refused].some((r) => r === path || (r !== "" && path.startsWith(`${r}.`)));
  const raw = (loadLoose(text) ?? {}) as Record<string, unknown>;
  const config: ProvisionConfig = { hooks: {}, env: {}, timeoutMs: DEFAULT_HOOK_TIMEOUT_MS };
  const hooks = raw.hooks;
  if (hooks && typeof hooks === "object" && !Array.isArray(hooks) && !isRefused("hooks")) {
    for (const name of HOOK_NAMES) {
      const value = (hooks as Record<string, unknown>)[name];
      if (typeof value === "string" && !isRefused(`hooks.${name}`) && hookPath.safeParse(value).success) {
        config.hooks[name] = value;
      }
    }
  }
  const env = raw.env;
  if (env && typeof env === "object" && !Array.isArray(env) && !isRefused("env")) {
    for (const [k, v] of Object.entries(env as Record<string, unknown>)) {
      if (ENV_NAME_RE.test(k) && !isRefused(`env.${k}`) && ["string", "number", "boolean"].includes(typeof v)) {
        config.env[k] = String(v);
      }
    }
  }
  if (typeof raw.timeout === "string" && !isRefused("timeout")) {
    config.timeoutMs = tryParseDuration(raw.timeout) ?? DEFAULT_HOOK_TIMEOUT_MS;
  }
  return { config, problems };
}

/** A file over PROVISION_MAX_BYTES: not read at all, reported like any other bad file (a warning; nothing applies). */
export function provisionTooLarge(file = PROVISION_PATH): ProvisionParse {
  return {
    config: EMPTY_PROVISION,
    problems: [
      {
        file,
        line: 1,
        col: 1,
        path: "",
        message: `the file is larger than ${PROVISION_MAX_BYTES / (1024 * 1024)} MiB, the most Shed reads; ignored`,
      },
    ],
  };
}

export function describeProblems(problems: ConfigProblem[]): string[] {
  return problems.map((p) => `${formatProblem(p)} (refused)`);
}

function loadLoose(text: string): unknown {
  const parsed = parseYamlWithSchema(text, "", z.unknown());
  return parsed.ok ? parsed.value : undefined;
}

/** JSON Schema of provision.yaml for editors' YAML language servers, from the schema the code validates with. */
export function provisionJsonSchema(): Record<string, unknown> {
  return {
    title: "Shed provisioning (.shed/provision.yaml)",
    ...(z.toJSONSchema(provisionSchema, { io: "input" }) as Record<string, unknown>),
  };
}
