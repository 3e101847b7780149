import { ShedError } from "../../core/errors.js";
import { type InstanceFile, instancePath } from "./instance-dir.js";
import { tailFile } from "./wait.js";

/** A failed boot, said with the last lines of the instance log that shows why (the serial console, a helper's log). */
export function bootError(
  dir: string,
  message: string,
  log: InstanceFile,
  code: "BACKEND_ERROR" | "TIMEOUT" = "BACKEND_ERROR",
): ShedError {
  const path = instancePath(dir, log);
  const tail = tailFile(path, 20);
  return new ShedError(code, tail ? `${message}; last lines of ${path}:\n${tail}` : `${message} (${path} is empty)`, {
    hint: "boot problems are in the instance's serial.log; under TCG (no /dev/kvm) a boot takes several seconds",
    details: { instance_dir: dir },
  });
}
