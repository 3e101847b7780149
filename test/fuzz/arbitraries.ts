import fc from "fast-check";
import { stringify } from "yaml";

/**
 * Generators shared by the fuzz tests: YAML-ish text for the config parsers,
 * and strings that hurt (control characters, unicode, lone surrogates, long ones).
 */

/** Cases per property: 10,000 by default (the floor); SHED_FUZZ_RUNS=100000 for a longer local run. */
export const FUZZ_RUNS = runsFromEnv();

function runsFromEnv(): number {
  const raw = process.env.SHED_FUZZ_RUNS;
  if (raw === undefined || raw === "") return 10_000;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`SHED_FUZZ_RUNS must be a positive integer, got ${raw}`);
  return n;
}

/**
 * CI runs one fixed seed, so that whether a change lands never depends on the draw; everywhere
 * else each run draws a new one and explores further (SHED_FUZZ_SEED=random does so in CI too).
 * What a new seed finds is fixed and kept in the regression lists, which every run replays first.
 */
const CI_SEED = "20261130";

function seedFromEnv(): string | undefined {
  const raw = process.env.SHED_FUZZ_SEED;
  if (raw === "random") return undefined;
  return raw || (process.env.CI === "true" ? CI_SEED : undefined);
}

/**
 * fast-check's parameters for every property here. A failure prints the seed, the path and the
 * shrunk counterexample; SHED_FUZZ_SEED=<seed> replays that run, and with SHED_FUZZ_PATH=<path>
 * only the failing case (run the one test with -t).
 */
export function fuzzParams<T>(examples: T[] = []): fc.Parameters<T> {
  const seed = seedFromEnv();
  const path = process.env.SHED_FUZZ_PATH;
  return {
    numRuns: FUZZ_RUNS,
    examples,
    ...(seed ? { seed: Number(seed) } : {}),
    ...(seed && path ? { path, endOnFailure: true } : {}),
  };
}

/** Any string: printable, full unicode (lone surrogates too), control characters; mostly short, sometimes long. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string() },
  { weight: 3, arbitrary: fc.string({ unit: "binary" }) },
  {
    weight: 2,
    arbitrary: fc.string({
      unit: fc.constantFrom("\0", "\x1b", "\r", "\n", "\t", "\u2028", "é", "😀", "\uD800", "a", " ", '"', "\\"),
    }),
  },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 120, maxLength: 1500 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom("a", "\n", "é", "x-"), fc.integer({ min: 101, max: 5_000 }))
      .map(([s, n]) => s.repeat(n)),
  },
);

/** Pieces of YAML syntax: random sequences of them reach the parser's odd corners (anchors, tags, flow, block scalars). */
const YAML_TOKENS = [
  "\n",
  "\n  ",
  "\n    ",
  "  ",
  " ",
  ":",
  ": ",
  "- ",
  "-",
  "? ",
  ",",
  "{",
  "}",
  "[",
  "]",
  "&a ",
  "*a",
  "&b ",
  "*b",
  "<<: *a",
  "!!str ",
  "!!int ",
  "!!map",
  "!!seq",
  "!!binary ",
  "!!set",
  "!!omap",
  "!!timestamp ",
  "!custom ",
  "!<tag:x> ",
  "%YAML 1.1\n---\n",
  "%YAML 1.2\n",
  "%TAG ! tag:x,2000:\n",
  "---\n",
  "...\n",
  "# c",
  "|",
  "|-",
  ">",
  ">+",
  '"',
  "'",
  "\\",
  "\t",
  "~",
  "null",
  "true",
  "no",
  "yes",
  "0x1F",
  "1e999",
  "-.inf",
  ".nan",
  "0o17",
  "2001-12-14t21:59:43.10-05:00",
  "9".repeat(30),
  "é",
  "😀",
  "\0",
  "\r",
  "\uFEFF",
  "\u2028",
  "a",
  "b",
  "x.sh",
  "../x",
  "/abs",
  "~/p",
  "90s",
  "10s",
  "hooks",
  "install",
  "startup",
  "shutdown",
  "env",
  "timeout",
  "features",
  "profiles",
  "paths",
  "source",
  "target",
  "include",
  "postSync",
  "run",
  "servers",
  "default_server",
  "host",
  "http_port",
  "ssh_port",
  "host_key",
  "token",
  "credentials",
  "data_dir",
];

export const yamlTokens: fc.Arbitrary<string> = fc
  .array(fc.constantFrom(...YAML_TOKENS), { maxLength: 60 })
  .map((parts) => parts.join(""));

/** Plain JS values as a YAML document (the yaml package's own writer), so the text parses and the schema is what gets tested. */
export function yamlOf(value: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return value.map((v) => {
    try {
      return stringify(v) ?? "";
    } catch {
      return String(v);
    }
  });
}

/** Values of any shape for a field: most of them wrong for it. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: anyString },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)) },
);

type LineEdit =
  | { kind: "delete" | "duplicate" | "dedent" | "indent" | "swap"; at: number }
  | { kind: "insert" | "replace" | "append"; at: number; text: string };

const lineEdit: fc.Arbitrary<LineEdit> = fc.oneof(
  fc.record({ kind: fc.constantFrom("delete", "duplicate", "dedent", "indent", "swap" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constantFrom("insert", "replace", "append" as const),
    at: fc.nat(),
    text: fc.oneof(yamlTokens, anyString),
  }),
);

/** Random line edits of a document: what a person (or a bad merge) does to a file. */
export function mutated(doc: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(doc, fc.array(lineEdit, { minLength: 1, maxLength: 5 })).map(([text, edits]) => {
    const lines = text.split("\n");
    for (const e of edits) {
      const i = lines.length === 0 ? 0 : e.at % lines.length;
      const line = lines[i] ?? "";
      switch (e.kind) {
        case "delete":
          lines.splice(i, 1);
          break;
        case "duplicate":
          lines.splice(i, 0, line);
          break;
        case "dedent":
          lines[i] = line.replace(/^ {1,2}/, "");
          break;
        case "indent":
          lines[i] = ` ${line}`;
          break;
        case "swap":
          lines[i] = lines[(i + 1) % lines.length] ?? "";
          lines[(i + 1) % lines.length] = line;
          break;
        case "insert":
          lines.splice(i, 0, e.text);
          break;
        case "replace":
          lines[i] = e.text;
          break;
        case "append":
          lines[i] = line + e.text;
          break;
      }
    }
    return lines.join("\n");
  });
}

/**
 * YAML-ish text for a config file: random strings, token soup, stringified random values,
 * stringified near-valid objects (real field names, random values), and line edits of those.
 */
export function configText(nearValid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  const docs = fc.oneof(yamlOf(nearValid), yamlOf(fc.anything({ maxDepth: 3 })));
  return fc.oneof(
    { weight: 1, arbitrary: anyString },
    { weight: 2, arbitrary: yamlTokens },
    { weight: 1, arbitrary: yamlOf(fc.anything({ maxDepth: 3 })) },
    { weight: 3, arbitrary: yamlOf(nearValid) },
    { weight: 3, arbitrary: mutated(docs) },
  );
}

/** A value that is sometimes right for its field (`good`), else anything. */
export function maybe<T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 2, arbitrary: good }, { weight: 1, arbitrary: anyValue });
}

/**
 * Every string value and key anywhere in `value` that is longer than `max`:
 * an error message must not carry any of them whole.
 */
export function longStrings(value: unknown, max = 120, out: string[] = [], depth = 0): string[] {
  if (depth > 20) return out;
  if (typeof value === "string") {
    if (value.length > max) out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) longStrings(v, max, out, depth + 1);
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k.length > max) out.push(k);
      longStrings(v, max, out, depth + 1);
    }
  }
  return out;
}

/**
 * True when `message` carries more than ~`limit` consecutive characters of `value`, as they are or
 * JSON-escaped (how quote() and JSON.stringify show them). Windows of the message (every 10 characters)
 * are looked up in the value, so a megabyte value costs a few native searches, not a scan per window.
 */
export function echoes(message: string, value: string, limit = 110): boolean {
  if (value.length < limit) return false;
  for (const text of [message, unescapeJson(message)]) {
    for (let i = 0; i + limit <= text.length; i += 10) {
      if (value.includes(text.slice(i, i + limit))) return true;
    }
  }
  return false;
}

const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", b: "\b", f: "\f" };

/** JSON string escapes decoded (\n, \", \u0000...), wherever they are in a message. */
function unescapeJson(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, e: string) =>
    e.length === 5 ? String.fromCharCode(Number.parseInt(e.slice(1), 16)) : (ESCAPES[e] ?? e),
  );
}
