import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** The executable `program` on PATH, as a shell would find it, or undefined. */
export function findOnPath(program: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
