import { accessSync, constants } from "node:fs";
import { findOnPath } from "../../core/find-on-path.js";

/**
 * A hypervisor program as the server config names it (firecracker_binary, vfkit_binary): a bare
 * name is looked up with `which` (PATH by default), a path (it has a '/') must be an executable
 * file itself. Undefined when it is not there.
 */
export function resolveHostProgram(
  binary: string,
  which: (bin: string) => string | undefined = (bin) => findOnPath(bin),
): string | undefined {
  if (!binary.includes("/")) return which(binary);
  return isExecutable(binary) ? binary : undefined;
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
