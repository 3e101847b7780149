import { readFileSync } from "node:fs";
import type { z } from "zod";
import { ShedError } from "../core/errors.js";
import { formatProblem, parseYamlWithSchema } from "./yaml-source.js";

/** Reads and validates a YAML config file; any problem is an INVALID_CONFIG error listing all of them. */
export function loadYamlFile<S extends z.core.$ZodType>(
  file: string,
  schema: S,
  opts: { missingOk?: boolean; what: string },
): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && opts.missingOk) text = "";
    else
      throw new ShedError("INVALID_CONFIG", `cannot read ${opts.what} ${file}: ${(err as Error).message}`, {
        cause: err,
      });
  }
  const parsed = parseYamlWithSchema(text, file, schema);
  if (parsed.ok) return parsed.value;
  const lines = parsed.problems.map(formatProblem);
  throw new ShedError("INVALID_CONFIG", `invalid ${opts.what}:\n  ${lines.join("\n  ")}`, {
    hint: `fix ${file} and try again`,
    details: { problems: parsed.problems },
  });
}
