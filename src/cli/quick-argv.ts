/**
 * The commands the CLI answers without loading its full bundle (see boot.ts):
 * `version` and `list`. Only a plain, well-formed argv is recognised here;
 * anything else (--help, an unknown option, a missing value, a stray argument)
 * is left to the full CLI, so its usage errors and messages stay the only ones.
 * The grammar follows commander's for these commands: the global options
 * --json, --config and --server anywhere, --all after `list`, `ls` for `list`.
 */
export interface QuickCommand {
  command: "version" | "list";
  json: boolean;
  config?: string;
  server?: string;
  all: boolean;
}

const VALUED = ["--config", "--server"] as const;

export function quickCommand(argv: readonly string[]): QuickCommand | undefined {
  let command: QuickCommand["command"] | undefined;
  const out: Omit<QuickCommand, "command"> = { json: false, all: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--json") {
      out.json = true;
      continue;
    }
    if (arg === "--all") {
      // Commander knows --all only after `list`.
      if (command !== "list") return undefined;
      out.all = true;
      continue;
    }
    const valued = VALUED.find((o) => arg === o || arg.startsWith(`${o}=`));
    if (valued) {
      const value = arg === valued ? argv[++i] : arg.slice(valued.length + 1);
      // A value commander might read differently (none, empty, or one that looks like an option): its call.
      if (value === undefined || value === "" || value.startsWith("-")) return undefined;
      out[valued === "--config" ? "config" : "server"] = value;
      continue;
    }
    if (command !== undefined) return undefined;
    if (arg === "version") command = "version";
    else if (arg === "list" || arg === "ls") command = "list";
    else return undefined;
  }
  return command === undefined ? undefined : { command, ...out };
}
