import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { checkShape, type Shape } from "../../src/cli/shape-check.js";
import { fakeShed } from "../helpers/fake-shed.js";

/**
 * The CLI checks a server's sheds with shape-check.ts instead of zod (for its
 * start-up time). Here zod is the reference: for a shed-like shape, any JSON
 * value anywhere gets the same verdict, the same first problem and the same message.
 */

const hookShape: Shape = {
  object: { state: "string", exit_code: { optional: "number" }, tail: { optional: { array: "string" } } },
};
const shape: Shape = {
  object: {
    name: "string",
    repo: { optional: "string" },
    resources: { record: "string" },
    warnings: { array: "string" },
    interrupted: { optional: { object: { step: "string", hint: "string" } } },
    provision: { optional: { object: { file_found: "boolean", hooks: { object: { install: hookShape } } } } },
  },
};
const hookSchema = z.looseObject({
  state: z.string(),
  exit_code: z.number().optional(),
  tail: z.array(z.string()).optional(),
});
const schema = z.looseObject({
  name: z.string(),
  repo: z.string().optional(),
  resources: z.record(z.string(), z.string()),
  warnings: z.array(z.string()),
  interrupted: z.looseObject({ step: z.string(), hint: z.string() }).optional(),
  provision: z.looseObject({ file_found: z.boolean(), hooks: z.looseObject({ install: hookSchema }) }).optional(),
});

function viaZod(value: unknown) {
  const r = schema.safeParse(value);
  if (r.success) return undefined;
  const issue = r.error.issues[0];
  return { path: issue?.path, message: issue?.message };
}

const good = () =>
  fakeShed("a", {
    repo: "r",
    interrupted: { step: "s", hint: "h" },
    provision: { file_found: true, hooks: { install: { state: "done", exit_code: 0, tail: ["x"] } } },
  });

const PATHS: (string | number)[][] = [
  [],
  ["name"],
  ["repo"],
  ["resources"],
  ["resources", "cpu"],
  ["warnings"],
  ["warnings", 0],
  ["interrupted"],
  ["interrupted", "hint"],
  ["provision"],
  ["provision", "file_found"],
  ["provision", "hooks"],
  ["provision", "hooks", "install"],
  ["provision", "hooks", "install", "exit_code"],
  ["provision", "hooks", "install", "tail", 0],
  ["unknown"],
];

/** A good shed with the value at `path` replaced (removed, for undefined). */
function changed(path: (string | number)[], to: unknown): unknown {
  if (path.length === 0) return to;
  const root = good() as Record<string | number, unknown>;
  let at = root;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== "object" || next === null) at[key] = {};
    at = at[key] as Record<string | number, unknown>;
  }
  const last = path.at(-1) as string | number;
  if (to === undefined) delete at[last];
  else at[last] = to;
  return root;
}

describe("checkShape against zod", () => {
  it("accepts a good shed, unknown fields included", () => {
    const value = { ...good(), extra: [1, { x: null }] };
    expect(checkShape(shape, value)).toBeUndefined();
    expect(viaZod(value)).toBeUndefined();
  });

  it("finds the same first problem, in the same words, for any JSON value anywhere", () => {
    fc.assert(
      fc.property(fc.constantFrom(...PATHS), fc.option(fc.jsonValue(), { nil: undefined }), (path, to) => {
        const value = changed(path, to);
        expect(checkShape(shape, value)).toEqual(viaZod(value));
      }),
      { numRuns: 3000 },
    );
  });
});
