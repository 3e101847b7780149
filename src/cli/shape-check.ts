/**
 * A structural check of JSON a server sent (validate-response.ts), without a
 * schema library. A `shed list` checks every shed, and in a process that lives
 * a fraction of a second zod's object parsing is the one function hot enough
 * for V8 to optimize it: the exit then waited for that background compile
 * (20 to 60 ms of a 50-shed list here). This walk does not get that hot, and
 * its messages are worded as zod's are (test/unit/shape-check.test.ts holds
 * the two side by side). Objects are loose: fields not in the shape pass.
 */
export type Shape =
  | "string"
  | "number"
  | "boolean"
  | { optional: Shape }
  | { array: Shape }
  /** An object whose every value has this shape (the keys of JSON are strings). */
  | { record: Shape }
  | { object: { [field: string]: Shape } };

export interface ShapeIssue {
  path: (string | number)[];
  message: string;
}

/** The first place where `value` does not have `shape`, fields in the shape's order; undefined when it has it. */
export function checkShape(shape: Shape, value: unknown, path: (string | number)[] = []): ShapeIssue | undefined {
  if (typeof shape === "string") return typeof value === shape ? undefined : mismatch(shape, value, path);
  if ("optional" in shape) return value === undefined ? undefined : checkShape(shape.optional, value, path);
  if ("array" in shape) {
    if (!Array.isArray(value)) return mismatch("array", value, path);
    for (let i = 0; i < value.length; i++) {
      const issue = checkShape(shape.array, value[i], [...path, i]);
      if (issue) return issue;
    }
    return undefined;
  }
  const kind = "record" in shape ? "record" : "object";
  if (typeof value !== "object" || value === null || Array.isArray(value)) return mismatch(kind, value, path);
  const fields = value as Record<string, unknown>;
  if ("record" in shape) {
    for (const key of Object.keys(fields)) {
      const issue = checkShape(shape.record, fields[key], [...path, key]);
      if (issue) return issue;
    }
    return undefined;
  }
  for (const key of Object.keys(shape.object)) {
    const field = Object.hasOwn(fields, key) ? fields[key] : undefined;
    const issue = checkShape(shape.object[key] as Shape, field, [...path, key]);
    if (issue) return issue;
  }
  return undefined;
}

function mismatch(expected: string, value: unknown, path: (string | number)[]): ShapeIssue {
  const received = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
  return { path, message: `Invalid input: expected ${expected}, received ${received}` };
}
