import type { Backend } from "../backends/backend.js";
import type { ServerConfig } from "../config/server-config.js";
import type { Shed } from "../core/types.js";
import type { Step } from "./steps.js";

export interface RunContext {
  backend: Backend;
  shed: Shed;
  config: ServerConfig;
}

/** The seed's Start Sequence (the startup hook plugs in last). */
export const START_STEPS: readonly Step<RunContext>[] = [
  {
    id: "start",
    title: "Container start",
    fatal: true,
    async run(ctx) {
      await ctx.backend.start(ctx.shed.name);
      return { outcome: "done" };
    },
  },
  {
    id: "local_dir",
    title: "Local-dir re-mount",
    fatal: true,
    async run(ctx) {
      if (!ctx.shed.local_dir) return { outcome: "skipped", reason: "no --local-dir" };
      return { outcome: "done", message: "bind mount persists across restarts" };
    },
  },
  {
    id: "credentials",
    title: "Credential refresh",
    fatal: false,
    async run(ctx) {
      if (ctx.backend.capabilities.credentialMechanism === "bind_mount") {
        return { outcome: "skipped", reason: "bind mounts persist (no action needed)" };
      }
      return { outcome: "skipped", reason: `not implemented for ${ctx.backend.name}` };
    },
  },
];

/** The seed's Stop Sequence (the shutdown hook plugs in first). */
export const STOP_STEPS: readonly Step<RunContext>[] = [
  {
    id: "stop",
    title: "Process stop",
    fatal: true,
    async run(ctx) {
      await ctx.backend.stop(ctx.shed.name, ctx.config.stopTimeoutMs);
      return { outcome: "done", message: `SIGTERM, then SIGKILL after ${ctx.config.stopTimeoutMs / 1000}s` };
    },
  },
];
