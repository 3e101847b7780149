import { getNodeValue, type Node, type ParseError, parseTree, printParseErrorCode } from "jsonc-parser";
import type { ConfigProblem } from "../yaml-source.js";

/**
 * devcontainer.json read as JSON with comments and trailing commas (Microsoft's
 * jsonc-parser, as the reference CLI reads it). Like provision.yaml, problems
 * never throw: each is `FILE:LINE:COL: property: message` and refuses only the
 * property it is in; the rest of the file still applies.
 */
export const DEVCONTAINER_MAX_BYTES = 256 * 1024;

export const LIFECYCLE_PROPERTIES = [
  "initializeCommand",
  "onCreateCommand",
  "updateContentCommand",
  "postCreateCommand",
  "postStartCommand",
  "postAttachCommand",
] as const;
export type LifecycleProperty = (typeof LIFECYCLE_PROPERTIES)[number];

/** One command as the spec defines its forms: a string runs with /bin/sh -c, an array as argv. */
export type SimpleCommand = { kind: "shell"; command: string } | { kind: "argv"; argv: string[] };
/** An object's entries run in parallel, each output line marked with the entry's name. */
export type LifecycleCommand =
  | SimpleCommand
  | { kind: "parallel"; entries: { name: string; command: SimpleCommand }[] };

export interface DevcontainerBuild {
  /** Relative to the folder of devcontainer.json, as the spec says. */
  dockerfile: string;
  context: string;
  args: Record<string, string>;
  target?: string;
}

export interface DevcontainerConfig {
  image?: string;
  build?: DevcontainerBuild;
  commands: Partial<Record<LifecycleProperty, LifecycleCommand>>;
  containerEnv: Record<string, string>;
  /** null unsets a variable (spec). */
  remoteEnv: Record<string, string | null>;
  remoteUser?: string;
  containerUser?: string;
  forwardPorts: string[];
  /** Keys Shed does not do yet, present in the file (each is one warning). */
  notDone: string[];
  /** dockerComposeFile is present: Shed makes one container per shed, so the file is refused. */
  compose: boolean;
}

/** Keys the spec defines that Shed does not act on yet: said, one warning per key, never silently dropped. */
export const NOT_DONE_KEYS = [
  "features",
  "forwardPorts",
  "mounts",
  "runArgs",
  "workspaceFolder",
  "workspaceMount",
  "overrideCommand",
  "userEnvProbe",
  "customizations",
  "appPort",
  "privileged",
  "capAdd",
  "securityOpt",
  "init",
] as const;

export interface DevcontainerParse {
  config: DevcontainerConfig;
  problems: ConfigProblem[];
}

export function emptyDevcontainer(): DevcontainerConfig {
  return { commands: {}, containerEnv: {}, remoteEnv: {}, forwardPorts: [], notDone: [], compose: false };
}

export function parseDevcontainer(text: string, file: string): DevcontainerParse {
  const config = emptyDevcontainer();
  const lines = lineStarts(text);
  const problems: ConfigProblem[] = [];
  const at = (offset: number, path: string, message: string) => {
    const { line, col } = position(lines, offset);
    problems.push({ file, line, col, path, message });
  };
  if (Buffer.byteLength(text) > DEVCONTAINER_MAX_BYTES) {
    at(0, "", `the file is larger than ${DEVCONTAINER_MAX_BYTES / 1024} KiB, the most Shed reads; ignored`);
    return { config, problems };
  }
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (root?.type !== "object") {
    at(root?.offset ?? errors[0]?.offset ?? 0, "", "the file is not a JSON object; ignored");
    return { config, problems };
  }
  const props = (root.children ?? []).filter((p) => p.type === "property" && p.children?.length);
  // A syntax error refuses the top-level property it falls in (or the one just before it).
  const refused = new Set<Node>();
  for (const e of errors) {
    const owner =
      props.find((p) => e.offset >= p.offset && e.offset <= p.offset + p.length) ??
      [...props].reverse().find((p) => p.offset + p.length <= e.offset);
    const key = owner?.children?.[0]?.value;
    at(e.offset, typeof key === "string" ? key : "", `JSON syntax: ${describeParseError(e)}`);
    if (owner) refused.add(owner);
  }
  if (errors.length && props.length === 0) return { config, problems };
  for (const prop of props) {
    if (refused.has(prop)) continue;
    const keyNode = prop.children?.[0];
    const value = prop.children?.[1];
    const key = keyNode?.value;
    if (typeof key !== "string" || !value) continue;
    readProperty(config, key, value, (node, path, message) => at(node.offset, path, message));
  }
  // A context with no Dockerfile (top-level "context" alone) builds nothing.
  if (config.build && !config.build.dockerfile) delete config.build;
  return { config, problems };
}

type Report = (node: Node, path: string, message: string) => void;

function readProperty(config: DevcontainerConfig, key: string, value: Node, report: Report): void {
  if ((LIFECYCLE_PROPERTIES as readonly string[]).includes(key)) {
    const command = readCommand(value, key, report);
    if (command) config.commands[key as LifecycleProperty] = command;
    return;
  }
  if ((NOT_DONE_KEYS as readonly string[]).includes(key)) config.notDone.push(key);
  switch (key) {
    case "image":
      if (nonEmptyString(value, key, report)) config.image = value.value;
      return;
    case "dockerFile":
    case "context":
      // The older top-level forms of build.dockerfile and build.context.
      if (nonEmptyString(value, key, report)) {
        const build = config.build ?? { dockerfile: "", context: ".", args: {} };
        config.build = { ...build, [key === "dockerFile" ? "dockerfile" : "context"]: value.value };
      }
      return;
    case "build":
      readBuild(config, value, report);
      return;
    case "containerEnv":
    case "remoteEnv": {
      const env = readStringMap(value, key, report, key === "remoteEnv");
      if (env) Object.assign(config[key], env);
      return;
    }
    case "remoteUser":
    case "containerUser":
      if (nonEmptyString(value, key, report)) config[key] = value.value;
      return;
    case "forwardPorts":
      if (value.type !== "array") return void report(value, key, "must be an array of ports");
      for (const [i, p] of (value.children ?? []).entries()) {
        if (p.type === "number" || p.type === "string") config.forwardPorts.push(String(p.value));
        else report(p, `${key}.${i}`, 'must be a port number or a "host:port" string');
      }
      return;
    case "dockerComposeFile":
      config.compose = true;
      return;
  }
}

function readBuild(config: DevcontainerConfig, value: Node, report: Report): void {
  if (value.type !== "object") return void report(value, "build", "must be an object");
  const build: DevcontainerBuild = {
    dockerfile: config.build?.dockerfile ?? "",
    context: config.build?.context ?? ".",
    args: {},
  };
  for (const prop of value.children ?? []) {
    const [k, v] = prop.children ?? [];
    if (!k || !v || typeof k.value !== "string") continue;
    const path = `build.${k.value}`;
    if (k.value === "dockerfile" || k.value === "dockerFile") {
      if (nonEmptyString(v, path, report)) build.dockerfile = v.value;
    } else if (k.value === "context") {
      if (nonEmptyString(v, path, report)) build.context = v.value;
    } else if (k.value === "target") {
      if (nonEmptyString(v, path, report)) build.target = v.value;
    } else if (k.value === "args") {
      const args = readStringMap(v, path, report, false);
      if (args) build.args = args as Record<string, string>;
    }
  }
  if (!build.dockerfile) return void report(value, "build.dockerfile", "is required to build an image; build ignored");
  config.build = build;
}

function readCommand(value: Node, path: string, report: Report): LifecycleCommand | undefined {
  if (value.type === "object") {
    const entries: { name: string; command: SimpleCommand }[] = [];
    for (const prop of value.children ?? []) {
      const [k, v] = prop.children ?? [];
      if (!k || !v || typeof k.value !== "string") continue;
      const command = readSimple(v, `${path}.${k.value}`, report);
      if (command) entries.push({ name: k.value, command });
    }
    return entries.length ? { kind: "parallel", entries } : undefined;
  }
  return readSimple(value, path, report);
}

function readSimple(value: Node, path: string, report: Report): SimpleCommand | undefined {
  if (value.type === "string") {
    if (noNul(value, path, report)) return value.value.trim() ? { kind: "shell", command: value.value } : undefined;
    return undefined;
  }
  if (value.type === "array") {
    const items = value.children ?? [];
    const bad = items.find((i) => i.type !== "string");
    if (bad) return void report(bad, path, "an array command must hold only strings; refused");
    if (!items.every((i) => noNul(i, path, report))) return undefined;
    if (items.length === 0 || !items[0]?.value)
      return void report(value, path, "an array command needs a program name; refused");
    return { kind: "argv", argv: items.map((i) => String(i.value)) };
  }
  report(
    value,
    path,
    `must be a string, an array of strings or an object of those, not ${describeType(value)}; refused`,
  );
  return undefined;
}

function readStringMap(
  value: Node,
  path: string,
  report: Report,
  allowNull: boolean,
): Record<string, string | null> | undefined {
  if (value.type !== "object") return void report(value, path, "must be an object of strings; refused");
  const out: Record<string, string | null> = {};
  for (const prop of value.children ?? []) {
    const [k, v] = prop.children ?? [];
    if (!k || !v || typeof k.value !== "string") continue;
    const where = `${path}.${k.value}`;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k.value)) {
      report(k, where, "is not a valid environment variable name; refused");
    } else if (v.type === "null" && allowNull) out[k.value] = null;
    else if (["string", "number", "boolean"].includes(v.type) && noNul(v, where, report))
      out[k.value] = String(getNodeValue(v));
    else if (v.type !== "string") report(v, where, `must be a string, not ${describeType(v)}; refused`);
  }
  return out;
}

function nonEmptyString(value: Node, path: string, report: Report): value is Node & { value: string } {
  if (value.type === "string" && value.value !== "") return noNul(value, path, report);
  report(value, path, `must be a non-empty string, not ${describeType(value)}; refused`);
  return false;
}

function noNul(value: Node, path: string, report: Report): boolean {
  if (typeof value.value === "string" && value.value.includes("\0")) {
    report(value, path, "holds a NUL character; refused");
    return false;
  }
  return true;
}

function describeType(node: Node): string {
  return node.type === "null" ? "null" : `a${node.type === "array" || node.type === "object" ? "n" : ""} ${node.type}`;
}

function describeParseError(e: ParseError): string {
  const names: Record<string, string> = {
    CommaExpected: "a comma is missing",
    ColonExpected: "a colon is missing",
    ValueExpected: "a value is missing",
    PropertyNameExpected: "a property name is missing",
    CloseBraceExpected: "a closing } is missing",
    CloseBracketExpected: "a closing ] is missing",
    EndOfFileExpected: "text after the end of the object",
    InvalidSymbol: "an invalid symbol",
    UnexpectedEndOfString: "a string is not closed",
    UnexpectedEndOfComment: "a comment is not closed",
  };
  const code = printParseErrorCode(e.error);
  return names[code] ?? code;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function position(starts: number[], offset: number): { line: number; col: number } {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, col: offset - (starts[lo] ?? 0) + 1 };
}
