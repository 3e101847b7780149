import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * A hypervisor program as the server config names it (firecracker_binary, vfkit_binary): a bare
 * name is looked up with `which` (PATH by default), a path (it has a '/') must be an executable
 * file itself. Undefined when it is not there.
 */
export function resolveHostProgram(
  binary: string,
  which: (bin: string) => string | undefined = onPath,
): string | undefined {
  if (!binary.includes("/")) return which(binary);
  return isExecutable(binary) ? binary : undefined;
}

/** The executable `program` in a PATH directory, as a shell would find it. */
function onPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && isExecutable(join(dir, program))) return join(dir, program);
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why resolveHostProgram found nothing, for an error message. */
export function programMissing(binary: string): string {
  return binary.includes("/") ? `${binary} is not an executable file` : `${binary} is not on the server's PATH`;
}
