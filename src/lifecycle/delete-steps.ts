import type { RunContext } from "./run-steps.js";
import type { Step } from "./steps.js";

export interface DeleteContext extends RunContext {
  /** `delete --keep-volume`. */
  keepVolume: boolean;
}

/**
 * The seed's delete: stop (STOP_STEPS, when running), then this. A --local-dir
 * shed has no workspace volume of its own, so a volume of its name (kept by an
 * earlier shed's `delete --keep-volume`) is never touched by its delete.
 *
 * Whether a workspace was kept on purpose is written in data_dir before the
 * shed goes (what a backend wrote on its objects may not change), so that a
 * workspace left by a delete that was killed half-way is never taken for a kept one.
 */
export const REMOVE_STEP: Step<DeleteContext> = {
  id: "remove",
  title: "Remove resources",
  fatal: true,
  async run(ctx) {
    const { name } = ctx.shed;
    const localDir = ctx.shed.local_dir !== undefined;
    if (!localDir) {
      if (ctx.keepVolume) ctx.prov.meta.markKept(name);
      else ctx.prov.meta.unmarkKept(name);
    }
    return ctx.backend.remove(name, { keepVolume: ctx.keepVolume || localDir });
  },
};
