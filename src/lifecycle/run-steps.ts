import type { Backend } from "../backends/backend.js";
import type { ServerConfig } from "../config/server-config.js";
import type { Shed } from "../core/types.js";
import { refreshCredentials } from "../guest/credentials.js";
import { type ProvisionState, READ_PROVISION_STEP, SHUTDOWN_STEP, STARTUP_STEP } from "./provision-steps.js";
import type { Step } from "./steps.js";

export interface RunContext {
  backend: Backend;
  shed: Shed;
  config: ServerConfig;
  prov: ProvisionState;
}

/** The seed's Start Sequence: the install hook never runs here (the state file records it ran). */
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
    async run(ctx, io) {
      if (ctx.backend.capabilities.credentialMechanism === "bind_mount") {
        // Direct bind mounts persist; copies (source not owned by uid 1000, or with exclude) are made again.
        const guest = ctx.backend.guest(ctx.shed.name);
        return { outcome: "done", message: await refreshCredentials(guest, ctx.config.credentials, io.warn) };
      }
      return { outcome: "skipped", reason: `not implemented for ${ctx.backend.name}` };
    },
  },
  READ_PROVISION_STEP,
  STARTUP_STEP,
];

/**
 * The seed's Stop Sequence. Per the seed Docker has no shutdown hook because
 * `docker stop` signals directly; Shed owns its stop path, so it runs the hook
 * on Docker too when the stop goes through Shed. A stop outside Shed (docker
 * stop, a host reboot) still skips it.
 */
export const STOP_STEPS: readonly Step<RunContext>[] = [
  READ_PROVISION_STEP,
  SHUTDOWN_STEP,
  {
    id: "stop",
    title: "Process stop",
    fatal: true,
    async run(ctx) {
      await ctx.backend.stop(ctx.shed.name, ctx.config.stopTimeoutMs);
      // How it stopped, not how long it took: the step's own time is shown beside it.
      return {
        outcome: "done",
        message: `stopped by SIGTERM (SIGKILL had it not exited within stop_timeout, ${ctx.config.stopTimeoutMs / 1000}s)`,
      };
    },
  },
];
