/**
 * The commands the CLI answers without loading its full bundle (see boot.ts):
 * `version`, `list`, and the lifecycle verbs `start NAME`, `stop NAME` and
 * `delete NAME` (delete only with --force: its question is the full CLI's).
 * Only a plain, well-formed argv is recognised here; anything else (--help, an
 * unknown option, a missing value, a stray argument) is left to the full CLI,
 * so its usage errors and messages stay the only ones. The grammar follows
 * commander's for these commands: the global options --json, --config and
 * --server anywhere, a command's own options only after it, `ls` for `list`.
 */
import { isShedName } from "../core/names.js";

export type QuickCommand =
  | ({ command: "version" } & QuickGlobals)
  | ({ command: "list"; all: boolean } & QuickGlobals)
  | ({ command: "start" | "stop"; name: string } & QuickGlobals)
  | ({ command: "delete"; name: string; force: true; keepVolume: boolean } & QuickGlobals);

export interface QuickGlobals {
  json: boolean;
  config?: string;
  server?: string;
}

type Verb = QuickCommand["command"];

const VALUED = ["--config", "--server"] as const;
const VERBS: Record<string, Verb> = {
  version: "version",
  list: "list",
  ls: "list",
  start: "start",
  stop: "stop",
  delete: "delete",
};
/** Each command's own flags (commander knows them only after the command). */
const FLAGS: Partial<Record<Verb, Record<string, "all" | "force" | "keepVolume">>> = {
  list: { "--all": "all" },
  delete: { "-f": "force", "--force": "force", "--keep-volume": "keepVolume" },
};
/** The commands that take a shed's name; one that does not look like a name is the full CLI's to refuse. */
const NAMED = new Set<Verb>(["start", "stop", "delete"]);

export function quickCommand(argv: readonly string[]): QuickCommand | undefined {
  let command: Verb | undefined;
  let name: string | undefined;
  const globals: QuickGlobals = { json: false };
  const flags = { all: false, force: false, keepVolume: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--json") {
      globals.json = true;
      continue;
    }
    const flag = command ? FLAGS[command]?.[arg] : undefined;
    if (flag) {
      flags[flag] = true;
      continue;
    }
    const valued = VALUED.find((o) => arg === o || arg.startsWith(`${o}=`));
    if (valued) {
      const value = arg === valued ? argv[++i] : arg.slice(valued.length + 1);
      // A value commander might read differently (none, empty, or one that looks like an option): its call.
      if (value === undefined || value === "" || value.startsWith("-")) return undefined;
      globals[valued === "--config" ? "config" : "server"] = value;
      continue;
    }
    if (command === undefined) {
      command = VERBS[arg];
      if (command === undefined) return undefined;
      continue;
    }
    if (!NAMED.has(command) || name !== undefined || !isShedName(arg)) return undefined;
    name = arg;
  }
  switch (command) {
    case "version":
      return { command, ...globals };
    case "list":
      return { command, all: flags.all, ...globals };
    case "start":
    case "stop":
      return name === undefined ? undefined : { command, name, ...globals };
    case "delete":
      // Without --force, delete asks first (or refuses with no terminal): the full CLI's job.
      return name === undefined || !flags.force
        ? undefined
        : { command, name, force: true, keepVolume: flags.keepVolume, ...globals };
    default:
      return undefined;
  }
}
