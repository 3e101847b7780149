import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

/**
 * Checks a request against Firecracker's own API description (Swagger 2.0, the copy in
 * test/fixtures/firecracker-api.yaml), so a plan that passes here carries only what Firecracker
 * documents: the path matches one of its path templates, the method exists there, the body
 * satisfies the operation's body schema (required fields present, no field the schema does not
 * define, types, enums and bounds right; $ref followed into the definitions), and a path parameter
 * equals the body's field of the same name where the schema has both (drive_id, iface_id).
 *
 * "No field the schema does not define" is stricter than JSON Schema's default, and on purpose:
 * Firecracker deserialises its bodies refusing unknown fields. A schema saying
 * additionalProperties (MMDS contents) allows them.
 */

export const FIRECRACKER_SPEC_FIXTURE = fileURLToPath(new URL("../fixtures/firecracker-api.yaml", import.meta.url));

type Schema = Record<string, unknown>;

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  type?: string;
  schema?: Schema;
}

export interface FirecrackerSpec {
  version: string;
  paths: Record<string, Record<string, { parameters?: Parameter[] }>>;
  definitions: Record<string, Schema>;
}

export interface SpecRequest {
  method: string;
  path: string;
  body?: unknown;
}

const HTTP_METHODS = ["get", "put", "patch", "post", "delete"];

let cached: FirecrackerSpec | undefined;

export function loadFirecrackerSpec(file = FIRECRACKER_SPEC_FIXTURE): FirecrackerSpec {
  if (file === FIRECRACKER_SPEC_FIXTURE && cached) return cached;
  const doc = parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  if (doc.swagger !== "2.0" || typeof doc.paths !== "object" || typeof doc.definitions !== "object") {
    throw new Error(`${file} is not a Swagger 2.0 document with paths and definitions`);
  }
  const spec: FirecrackerSpec = {
    version: String((doc.info as Record<string, unknown> | undefined)?.version ?? "unknown"),
    paths: doc.paths as FirecrackerSpec["paths"],
    definitions: doc.definitions as FirecrackerSpec["definitions"],
  };
  if (file === FIRECRACKER_SPEC_FIXTURE) cached = spec;
  return spec;
}

/** Every problem with the request, each naming where it is; empty when the request conforms. */
export function checkFirecrackerRequest(req: SpecRequest, spec = loadFirecrackerSpec()): string[] {
  const where = `${req.method} ${req.path}`;
  const match = matchPath(spec, req.path);
  if (!match) return [`${where}: no path template of the API matches ${JSON.stringify(req.path)}`];
  const item = spec.paths[match.template] ?? {};
  const method = req.method.toLowerCase();
  const op = HTTP_METHODS.includes(method) ? item[method] : undefined;
  if (!op) {
    const allowed = Object.keys(item).filter((m) => HTTP_METHODS.includes(m));
    return [`${where}: ${match.template} has no ${req.method} (it has ${allowed.join(", ").toUpperCase()})`];
  }
  const problems: string[] = [];
  const params = op.parameters ?? [];
  for (const p of params.filter((x) => x.in === "path")) {
    const value = match.params[p.name];
    if (value === undefined || value === "") problems.push(`${where}: path parameter ${p.name} is empty`);
  }
  const bodyParam = params.find((x) => x.in === "body");
  if (!bodyParam) {
    if (req.body !== undefined) problems.push(`${where}: the operation takes no body, but one was given`);
    return problems;
  }
  if (req.body === undefined) {
    if (bodyParam.required) problems.push(`${where}: the operation requires a body (${describe(bodyParam.schema)})`);
    return problems;
  }
  const schema = bodyParam.schema;
  if (!schema) throw new Error(`${where}: the spec's body parameter has no schema`);
  validate(spec, schema, req.body, "body", problems);
  // A path parameter and a body field of the same name must agree (Firecracker refuses a mismatch).
  const resolved = resolve(spec, schema);
  const props = (resolved.properties ?? {}) as Record<string, Schema>;
  for (const [name, value] of Object.entries(match.params)) {
    if (!(name in props) || typeof req.body !== "object" || req.body === null) continue;
    const bodyValue = (req.body as Record<string, unknown>)[name];
    if (bodyValue !== value) {
      problems.push(
        `body.${name}: ${JSON.stringify(bodyValue)} differs from the path's ${name} ${JSON.stringify(value)}`,
      );
    }
  }
  return problems.map((p) => (p.startsWith(where) ? p : `${where}: ${p}`));
}

/** Throws an Error listing every problem (for tests and the stand-in server). */
export function assertFirecrackerRequest(req: SpecRequest, spec = loadFirecrackerSpec()): void {
  const problems = checkFirecrackerRequest(req, spec);
  if (problems.length > 0) throw new Error(`not a valid Firecracker request:\n  ${problems.join("\n  ")}`);
}

function matchPath(
  spec: FirecrackerSpec,
  path: string,
): { template: string; params: Record<string, string> } | undefined {
  for (const template of Object.keys(spec.paths)) {
    const names: string[] = [];
    const pattern = template
      .split("/")
      .map((seg) => {
        const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(seg);
        if (m) {
          names.push(m[1] as string);
          return "([^/?#]+)";
        }
        return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      })
      .join("/");
    const m = new RegExp(`^${pattern}$`).exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    names.forEach((n, i) => {
      params[n] = decodeURIComponent(m[i + 1] as string);
    });
    return { template, params };
  }
  return undefined;
}

function resolve(spec: FirecrackerSpec, schema: Schema, seen: string[] = []): Schema {
  const ref = schema.$ref;
  if (typeof ref !== "string") return schema;
  const m = /^#\/definitions\/(.+)$/.exec(ref);
  const target = m ? spec.definitions[m[1] as string] : undefined;
  if (!target) throw new Error(`the spec refers to ${ref}, which it does not define`);
  if (seen.includes(ref)) throw new Error(`the spec's ${ref} refers to itself`);
  return resolve(spec, target, [...seen, ref]);
}

function describe(schema: Schema | undefined): string {
  return typeof schema?.$ref === "string" ? schema.$ref.replace("#/definitions/", "") : "a JSON value";
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function validate(spec: FirecrackerSpec, raw: Schema, value: unknown, at: string, problems: string[]): void {
  const schema = resolve(spec, raw);
  const type = schema.type;
  const shown = JSON.stringify(value) ?? String(value);
  switch (type) {
    case "object": {
      if (typeOf(value) !== "object") {
        problems.push(`${at}: expected an object, got ${typeOf(value)}`);
        return;
      }
      const obj = value as Record<string, unknown>;
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      for (const name of (schema.required ?? []) as string[]) {
        if (!(name in obj)) problems.push(`${at}: missing required field ${name}`);
      }
      for (const [name, v] of Object.entries(obj)) {
        const prop = props[name];
        if (prop) validate(spec, prop, v, `${at}.${name}`, problems);
        else if (schema.additionalProperties === true) continue;
        else if (typeof schema.additionalProperties === "object") {
          validate(spec, schema.additionalProperties as Schema, v, `${at}.${name}`, problems);
        } else problems.push(`${at}: field ${name} is not defined by ${describe(raw)}`);
      }
      return;
    }
    case "array": {
      if (!Array.isArray(value)) {
        problems.push(`${at}: expected an array, got ${typeOf(value)}`);
        return;
      }
      const items = schema.items as Schema | undefined;
      if (items) {
        value.forEach((v, i) => {
          validate(spec, items, v, `${at}[${i}]`, problems);
        });
      }
      return;
    }
    case "string":
      if (typeof value !== "string") problems.push(`${at}: expected a string, got ${typeOf(value)} ${shown}`);
      break;
    case "integer":
      if (typeOf(value) !== "integer") problems.push(`${at}: expected an integer, got ${typeOf(value)} ${shown}`);
      break;
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) problems.push(`${at}: expected a number, got ${shown}`);
      break;
    case "boolean":
      if (typeof value !== "boolean") problems.push(`${at}: expected a boolean, got ${typeOf(value)} ${shown}`);
      break;
    default:
      // A schema this checker does not understand must not pass silently.
      throw new Error(`${at}: the spec's schema has type ${JSON.stringify(type)}, which this checker does not handle`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    problems.push(`${at}: ${shown} is not one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) {
      problems.push(`${at}: ${value} is below the minimum ${schema.minimum}`);
    }
    if (typeof schema.maximum === "number" && value > schema.maximum) {
      problems.push(`${at}: ${value} is above the maximum ${schema.maximum}`);
    }
  }
}
