import { existsSync } from "node:fs";
import { z } from "zod";
import { ShedError } from "../core/errors.js";
import { quote } from "../core/quote.js";
import { loadYamlFile } from "./load-yaml-file.js";

/**
 * `sync.yaml` beside the client config (default ~/.shed/sync.yaml): files from
 * the developer's machine to copy into sheds, grouped in features, and
 * profiles naming features. `shed create` syncs the `default` profile (seed:
 * create step 9, Auto-sync); `shed sync` does it on demand.
 *
 *   features:
 *     git:
 *       description: Git identity
 *       paths:
 *         - { source: ~/.gitconfig, target: ~/.gitconfig }
 *     gh:
 *       paths:
 *         - { source: ~/.config/gh, target: ~/.config/gh, include: ["hosts.yml"] }
 *       postSync:
 *         - run: gh auth setup-git
 *   profiles:
 *     default:
 *       features: [git, gh]
 */
export const SYNC_FILE_NAME = "sync.yaml";
export const DEFAULT_PROFILE = "default";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const name = z.string().regex(NAME_RE, { message: "is not a valid name (letters, digits, '_', '.', '-')" });

/** `~`, `~/...` or an absolute path; `~` is the local user's home for a source, /home/shed for a target. */
const syncPath = (what: string) =>
  z
    .string()
    .min(1)
    .refine((p) => p === "~" || p.startsWith("~/") || p.startsWith("/"), {
      message: "must be an absolute path or start with ~/",
    })
    .refine((p) => p.split("/").every((seg) => seg !== ".."), { message: "must not contain '..'" })
    .describe(what);

const pathSchema = z
  .object({
    source: syncPath("File or directory on this machine (~ is your home)"),
    target: syncPath("Where it goes in the shed (~ is /home/shed)").refine((p) => p.replace(/\/+$/, "") !== "", {
      message: "must not be the root directory",
    }),
    include: z
      .array(z.string().min(1))
      .min(1)
      .describe("Globs (relative to a directory source) of the files to copy; default: everything")
      .optional(),
  })
  .strict();

const featureSchema = z
  .object({
    description: z.string().optional(),
    paths: z.array(pathSchema).describe("What to copy"),
    postSync: z
      .array(z.object({ run: z.string().min(1).describe("Command run with bash -lc as user shed") }).strict())
      .describe("Commands run in the shed after the files are copied")
      .optional(),
  })
  .strict();

const profileSchema = z.object({ features: z.array(z.string().min(1)).min(1) }).strict();

export const syncFileSchema = z
  .object({
    features: z.record(name, featureSchema).default({}),
    profiles: z.record(name, profileSchema).default({}),
  })
  .strict()
  .superRefine((v, ctx) => {
    const known = Object.keys(v.features);
    for (const [profile, p] of Object.entries(v.profiles)) {
      p.features.forEach((f, i) => {
        if (Object.hasOwn(v.features, f)) return;
        ctx.addIssue({
          code: "custom",
          path: ["profiles", profile, "features", i],
          message: `unknown feature ${quote(f)}${known.length ? ` (features: ${listed(known)})` : ""}`,
        });
      });
    }
  });

/** Names from the file in a message: the first few, each cut, and a count of the rest. */
function listed(names: string[], shown = 5): string {
  const list = names.slice(0, shown).map((n) => (n.length <= 40 ? n : quote(n, 40)));
  return `${list.join(", ")}${names.length > shown ? ` and ${names.length - shown} more` : ""}`;
}

export type SyncFileData = z.output<typeof syncFileSchema>;
export type SyncFeature = SyncFileData["features"][string];
export type SyncPathSpec = SyncFeature["paths"][number];

export interface SyncFile {
  file: string;
  /** False when there is no sync.yaml: nothing to sync. */
  exists: boolean;
  data: SyncFileData;
}

/** Reads and validates sync.yaml; problems are INVALID_CONFIG errors saying `sync.yaml:LINE:COL: field: message`. */
export function loadSyncFile(file: string): SyncFile {
  if (!existsSync(file)) return { file, exists: false, data: { features: {}, profiles: {} } };
  return { file, exists: true, data: loadYamlFile(file, syncFileSchema, { what: "sync file" }) };
}

/** A feature chosen for a sync, with its name. */
export interface SelectedFeature extends SyncFeature {
  name: string;
}

/**
 * The features a sync covers: the named ones, or the profile's (default: the
 * `default` profile). Undefined when no profile was named and there is no
 * default profile (nothing to sync); an unknown name is an INVALID_REQUEST.
 */
export function selectFeatures(
  sync: SyncFile,
  pick: { profile?: string | undefined; features?: string[] | undefined },
): { profile?: string; features: SelectedFeature[] } | undefined {
  const all = sync.data.features;
  const choose = (names: string[]) => names.map((n) => ({ name: n, ...(all[n] as SyncFeature) }));
  if (pick.features && pick.features.length > 0) {
    for (const f of pick.features) {
      if (!Object.hasOwn(all, f)) throw unknownName("feature", f, Object.keys(all), sync);
    }
    return { features: choose([...new Set(pick.features)]) };
  }
  const profile = pick.profile ?? DEFAULT_PROFILE;
  const chosen = Object.hasOwn(sync.data.profiles, profile) ? sync.data.profiles[profile] : undefined;
  if (!chosen) {
    if (pick.profile === undefined) return undefined;
    throw unknownName("profile", profile, Object.keys(sync.data.profiles), sync);
  }
  return { profile, features: choose([...new Set(chosen.features)]) };
}

function unknownName(kind: "profile" | "feature", value: string, known: string[], sync: SyncFile): ShedError {
  const where = sync.exists ? `in ${sync.file}` : `(there is no ${sync.file})`;
  return new ShedError("INVALID_REQUEST", `no sync ${kind} named ${quote(value)} ${where}`, {
    hint: known.length
      ? `${kind}s: ${listed(known)}`
      : `define ${kind === "profile" ? "profiles.NAME.features" : "features.NAME.paths"} in ${sync.file}`,
  });
}
