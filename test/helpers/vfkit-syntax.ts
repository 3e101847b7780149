import { expect } from "vitest";

/**
 * The argv read back the way vfkit's documentation (doc/usage.md in crc-org/vfkit) describes its
 * command line, by a parser written here from that text and not shared with the code under test:
 * `--device TYPE,opt,key=value,...` split on commas, each option at its first '='; the Linux
 * bootloader's cmdline enclosed in '"' (so a comma may sit inside it).
 */
type Options = Map<string, string | true>;

function splitOption(opt: string): [string, string | true] {
  const eq = opt.indexOf("=");
  return eq < 0 ? [opt, true] : [opt.slice(0, eq), opt.slice(eq + 1)];
}

function parseDevice(value: string): { type: string; opts: Options } {
  const [type, ...rest] = value.split(",");
  return { type: type as string, opts: new Map(rest.map(splitOption)) };
}

function parseBootloader(value: string): { type: string; opts: Options } {
  const parts: string[] = [];
  let cur = "";
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  const [type, ...rest] = parts;
  const opts: Options = new Map(rest.map(splitOption));
  const cmdline = opts.get("cmdline");
  if (typeof cmdline === "string" && cmdline.startsWith('"') && cmdline.endsWith('"'))
    opts.set("cmdline", cmdline.slice(1, -1));
  return { type: type as string, opts };
}

export function parseVfkit(argv: string[]) {
  const [binary, ...rest] = argv;
  const flags = new Map<string, string[]>();
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i] as string;
    expect(flag.startsWith("--"), `${flag} at ${i} is a flag`).toBe(true);
    expect(rest[i + 1], `${flag} has a value`).toBeDefined();
    flags.set(flag, [...(flags.get(flag) ?? []), rest[i + 1] as string]);
  }
  return {
    binary,
    one: (flag: string) => {
      expect(flags.get(flag), flag).toHaveLength(1);
      return flags.get(flag)?.[0] as string;
    },
    devices: (flags.get("--device") ?? []).map(parseDevice),
    bootloader: () => parseBootloader(flags.get("--bootloader")?.[0] as string),
  };
}
