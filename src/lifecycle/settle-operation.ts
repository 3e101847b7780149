import { rmSync } from "node:fs";
import { finishedAtRestart } from "./recovery.js";
import type { ServiceDeps } from "./shed-service.js";

/**
 * Finishes the operation recorded as in progress on a name, when that needs
 * no choice: a create killed before its container was usable is undone, a
 * delete killed while removing is completed. Any other one is left as the
 * interrupted state that `shed list` shows. Returns what was done.
 */
export async function settleOperation(
  name: string,
  deps: Pick<ServiceDeps, "meta" | "backends" | "bundlePath">,
): Promise<string | undefined> {
  const meta = deps.meta.read(name);
  const op = meta.operation;
  if (!op) return undefined;
  const backend = op.backend ? deps.backends.get(op.backend) : undefined;
  // The API removes a create's bundle when the create ends; one the server died in is removed here.
  const bundle = op.bundle ? deps.bundlePath(op.bundle) : undefined;
  if (bundle) rmSync(bundle, { force: true });
  if (backend && finishedAtRestart(op.op, op.step)) {
    if (op.op === "create" && op.created_at) {
      await backend.removeLeftovers(name, op.created_at);
      deps.meta.remove(name);
      return `create of ${name} was interrupted at step ${op.step} (shed-server stopped): what it had made is removed`;
    }
    if (op.op === "delete") {
      const keep = op.keep_volume === true || op.local_dir === true;
      if (!op.local_dir) {
        if (op.keep_volume) deps.meta.markKept(name);
        else deps.meta.unmarkKept(name);
      }
      await backend.remove(name, { keepVolume: keep });
      deps.meta.remove(name);
      return `delete of ${name} was interrupted at step remove (shed-server stopped): finished, ${keep ? "workspace kept" : "its workspace volume removed"}`;
    }
  }
  deps.meta.update(name, (m) => {
    delete m.operation;
  });
  return undefined;
}
