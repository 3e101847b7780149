import { type Document, isMap, isPair, isScalar, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { z } from "zod";
import { safeParse } from "zod/v4/core";
import { quote } from "../core/quote.js";

/**
 * Parses YAML with source positions and validates it with a zod schema, so every
 * problem is reported as `file:line:col: field.path: message`. Used by every
 * YAML file Shed reads (server config, client config, provision.yaml, sync.yaml).
 */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  /** Dotted path of the field, "" for the whole document. */
  path: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  // The path is made of the file's keys: an unknown key of 50 KB is named, not echoed whole.
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${cut(p.path, 100)}: ` : ""}${p.message}`;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; problems: ConfigProblem[] };

// Any zod schema, classic or mini (the CLI's own use zod/mini, for its start-up time).
export function parseYamlWithSchema<S extends z.core.$ZodType>(
  text: string,
  file: string,
  schema: S,
): ParseResult<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          file,
          line: pos.line,
          col: pos.col,
          path: "",
          // yaml's message quotes the offending source, which can be the rest of the file.
          message: `YAML syntax: ${cut(firstLine(e.message))}`,
        };
      }),
    };
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    // yaml throws here instead of reporting: an alias it cannot resolve (`<<: *a` with no anchor a), and
    // more aliases than it allows (an alias bomb: "Excessive alias count").
    const at = aliasPosition(doc, lineCounter);
    const message = firstLine(err instanceof Error ? err.message : String(err));
    return { ok: false, problems: [{ file, ...at, path: "", message: `YAML: ${cut(message)}` }] };
  }
  const result = safeParse(schema, raw);
  if (result.success) return { ok: true, value: result.data };

  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path.map((k) => (typeof k === "symbol" ? String(k) : k));
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const at = positionOf(doc.contents, [...path, key], lineCounter, "key");
        problems.push({ file, ...at, path: [...path, key].join("."), message: "unknown field" });
      }
      continue;
    }
    if (issue.code === "invalid_key") {
      const at = positionOf(doc.contents, path, lineCounter, "key");
      const inner = issue.issues[0]?.message ?? issue.message;
      problems.push({ file, ...at, path: path.join("."), message: `${quote(String(path.at(-1)))} ${inner}` });
      continue;
    }
    const at = positionOf(doc.contents, path, lineCounter, "value");
    problems.push({ file, ...at, path: path.join("."), message: describeIssue(issue, valueAt(raw, path)) });
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, problems };
}

function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const shown = value === undefined ? "" : ` (got ${showValue(value)})`;
  if (issue.code === "invalid_type" && value === undefined)
    return `${issue.message.replace(/, received undefined$/, "")}: field is required`;
  return `${issue.message}${shown}`;
}

/** A value as the file gave it, cut to about 100 characters: a problem names the value, it does not echo a huge one. */
function showValue(value: unknown): string {
  if (typeof value === "string") return quote(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // A BigInt (or anything else JSON cannot write) is still shown.
    text = String(value);
  }
  return text.length <= 100 ? text : `${text.slice(0, 100)}… (${text.length} characters)`;
}

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  let cur: unknown = raw;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

/** Position of the value (or the key) at `path`, falling back to the nearest ancestor that exists. */
function positionOf(
  root: unknown,
  path: (string | number)[],
  lc: LineCounter,
  want: "key" | "value",
): { line: number; col: number } {
  let node: unknown = root;
  let best: { line: number; col: number } = posOfNode(root, lc) ?? { line: 1, col: 1 };
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (!isMap(node) && !(node && typeof node === "object" && "items" in node)) break;
    const items = (node as { items: unknown[] }).items;
    let next: unknown;
    if (isMap(node)) {
      const pair = items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
      if (!isPair(pair)) break;
      const last = i === path.length - 1;
      const keyPos = posOfNode(pair.key, lc);
      if (last && want === "key" && keyPos) return keyPos;
      best = posOfNode(pair.value, lc) ?? keyPos ?? best;
      next = pair.value;
    } else {
      next = typeof seg === "number" ? items[seg] : undefined;
      if (next === undefined) break;
      best = posOfNode(next, lc) ?? best;
    }
    node = next;
  }
  return best;
}

function posOfNode(node: unknown, lc: LineCounter): { line: number; col: number } | undefined {
  const range = (node as Node | null | undefined)?.range;
  if (!range) return undefined;
  return lc.linePos(range[0]);
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}

/** At most 100 characters of a parser's message, so the source it may quote is never echoed at more than that. */
function cut(s: string, max = 100): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}

/** Where toJS() failed: the first alias that resolves to nothing, else the first alias, else the start. */
function aliasPosition(doc: Document, lc: LineCounter): { line: number; col: number } {
  let unresolved: { line: number; col: number } | undefined;
  let first: { line: number; col: number } | undefined;
  visit(doc, {
    Alias(_, node) {
      const pos = posOfNode(node, lc);
      first ??= pos;
      if (!unresolved && node.resolve(doc) === undefined) unresolved = pos;
    },
  });
  return unresolved ?? first ?? { line: 1, col: 1 };
}
