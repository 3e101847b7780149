import type { ServerConfig } from "../config/server-config.js";
import { ShedError, toShedError } from "../core/errors.js";
import type { BackendName } from "../core/types.js";
import { checkFirecrackerHost } from "./firecracker/firecracker-check.js";
import { checkQemuInstalled } from "./qemu/qemu-check.js";
import { checkVzHost } from "./vz/vz-check.js";

/**
 * Whether this host could run a backend at all, as data: one synchronous check per backend that
 * names what is missing and how to get it (/dev/kvm, the firecracker binary, macOS, vfkit, QEMU).
 * A server runs it for a backend its config leaves out, so `create --backend X` says why X would
 * not work here, not only that it is not enabled. Docker's engine is checked by its ping at start.
 */
const HOST_CHECKS: Record<BackendName, (config: ServerConfig) => void> = {
  docker: () => {},
  qemu: () => checkQemuInstalled(),
  firecracker: (c) => checkFirecrackerHost({ firecrackerBinary: c.vm.firecrackerBinary, bridge: c.vm.bridge }),
  vz: (c) => checkVzHost({ vfkitBinary: c.vm.vfkitBinary }),
};

/** What stops this host from running `backend`, or undefined when nothing that can be checked does. */
export function hostProblem(backend: BackendName, config: ServerConfig): ShedError | undefined {
  try {
    HOST_CHECKS[backend](config);
    return undefined;
  } catch (err) {
    return err instanceof ShedError ? err : toShedError(err);
  }
}
