import type { Backend } from "../backends/backend.js";
import type { ServerConfig } from "../config/server-config.js";
import type { Shed } from "../core/types.js";
import { userAtStart } from "./devcontainer-user.js";
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
    title: "Container/VM start",
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
      return ctx.backend.remountLocalDir(ctx.shed);
    },
  },
  {
    id: "credentials",
    title: "Credential refresh",
    fatal: false,
    async run(ctx, io) {
      const user = await userAtStart(ctx.prov.guest, ctx.prov.meta.read(ctx.shed.name).devcontainer);
      return ctx.backend.refreshCredentials(ctx.shed, ctx.config.credentials, user, io.warn);
    },
  },
  READ_PROVISION_STEP,
  STARTUP_STEP,
];

/** The seed: the agent lets in-flight operations finish for up to 5 s before the power goes. */
export const AGENT_DRAIN_MS = 5000;

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
    id: "drain",
    title: "Agent drain",
    fatal: false,
    async run(ctx) {
      return ctx.backend.drain(ctx.shed.name, AGENT_DRAIN_MS);
    },
  },
  {
    id: "stop",
    title: "Process stop",
    fatal: true,
    async run(ctx) {
      return ctx.backend.stop(ctx.shed.name, ctx.config.stopTimeoutMs);
    },
  },
];
