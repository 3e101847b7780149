import type { InterruptedStatus, Shed } from "../core/types.js";
import type { InterruptedOperation, OperationName } from "./meta-store.js";

/**
 * What an operation the server was killed in means for the shed, step by
 * step, and what ends that state. Every step is recorded before it runs
 * (meta-store.ts); at the next start the server either finishes what can be
 * finished without a choice (shed-service.ts recover) or shows the shed as
 * interrupted with the way out:
 * - create killed in storage, devcontainer (an image build) or start:
 *   nothing usable exists yet, so it is
 *   undone at restart as a failed step would have been (only the objects
 *   labelled with this create's created-at);
 * - delete killed in remove: the shutdown hook and stop are behind it, so it
 *   is finished at restart, keeping the workspace if it was to be kept;
 * - every other step: the shed stays, marked interrupted, until the operation
 *   that the hint names completes (or the shed is deleted).
 */

const CREATE_UNDONE = new Set(["storage", "devcontainer", "start"]);

/** Steps whose interruption restart-time recovery finishes by itself. */
export function finishedAtRestart(op: OperationName, step: string): boolean {
  return (op === "create" && CREATE_UNDONE.has(step)) || (op === "delete" && step === "remove");
}

/** Operations that, completing, end an interrupted state (provision_startup: `shed provision --hook startup`). */
export type Completion = "start" | "stop" | "provision" | "provision_startup" | "provision_hook";

const CREATE_UNUSABLE = new Set(["storage", "devcontainer", "start", "local_dir", "credentials", "clone"]);
const CREATE_PROVISIONING = new Set(["provision_file", "install_hook", "path_capture"]);

export function clearedBy(i: InterruptedOperation, done: Completion): boolean {
  switch (i.op) {
    case "create":
      // The workspace or the container's set-up is incomplete: nothing but delete (and create again) fixes it.
      if (CREATE_UNUSABLE.has(i.step)) return false;
      if (CREATE_PROVISIONING.has(i.step)) return done === "provision";
      return done === "provision" || done === "provision_startup" || done === "start";
    case "start":
      return done !== "provision_hook";
    case "stop":
    case "delete":
      return done === "start" || done === "stop";
    case "provision":
      return done === "provision" || (i.step === "startup_hook" && (done === "provision_startup" || done === "start"));
  }
}

/** The interrupted state as the API shows it; `kept` when the workspace was kept by `delete --keep-volume`. */
export function interruptedStatus(i: InterruptedOperation, shed: Shed, kept: boolean): InterruptedStatus {
  return {
    operation: i.op,
    step: i.step,
    started_at: i.started_at,
    message: `${i.op} interrupted at step ${i.step} (shed-server stopped during it)`,
    hint: hintFor(i, shed, kept),
  };
}

function hintFor(i: InterruptedOperation, shed: Shed, kept: boolean): string {
  const n = shed.name;
  const running = shed.status === "running";
  switch (i.op) {
    case "create":
      if (CREATE_UNUSABLE.has(i.step)) {
        return kept && !shed.local_dir
          ? `the shed is incomplete: \`shed delete ${n} --keep-volume\` (the workspace kept earlier stays), then create it again`
          : `the shed is incomplete: \`shed delete ${n}\`, then create it again`;
      }
      if (CREATE_PROVISIONING.has(i.step)) {
        return `provisioning did not finish: \`shed provision ${n}\` runs the install hook, PATH capture and the startup hook again`;
      }
      return `the startup hook did not finish: \`shed provision ${n} --hook startup\` runs it again`;
    case "start":
      return running
        ? `the startup hook may not have run: \`shed provision ${n} --hook startup\`, or \`shed stop ${n}\` then \`shed start ${n}\``
        : `\`shed start ${n}\` starts it again`;
    case "stop":
      return running
        ? `\`shed stop ${n}\` stops it again`
        : `it is stopped, but its shutdown hook may not have finished (see \`shed logs ${n} shutdown\`); \`shed start ${n}\` when you need it`;
    case "delete":
      return `it is still there: \`shed delete ${n}\` deletes it again${i.step === "shutdown_hook" ? " (with its shutdown hook)" : ""}`;
    case "provision":
      return i.step === "startup_hook"
        ? `\`shed provision ${n} --hook startup\` runs the startup hook again`
        : `\`shed provision ${n}\` runs the provisioning again`;
  }
}
