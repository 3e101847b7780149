import type { Backend, CreatedHandle, CreateSpec, StorageResult } from "../backends/backend.js";
import type { CredentialConfig } from "../config/server-config.js";
import { ShedError } from "../core/errors.js";
import { shedBaseEnv } from "../core/types.js";
import { cloneRepo, type RepoSource } from "../guest/clone.js";
import { setUpCredentials } from "../guest/credentials.js";
import { prepareGuest } from "../guest/install-state.js";
import type { CheckedLocalDir } from "./local-dir-policy.js";
import { LOCAL_DIR_STEP } from "./local-dir-step.js";
import {
  INSTALL_STEP,
  PATH_CAPTURE_STEP,
  type ProvisionState,
  READ_PROVISION_STEP,
  STARTUP_STEP,
} from "./provision-steps.js";
import type { Step } from "./steps.js";

export interface CreateContext {
  backend: Backend;
  spec: CreateSpec;
  repo: RepoSource | undefined;
  missingCredentials: CredentialConfig[];
  prov: ProvisionState;
  /** The checked --local-dir (its real path is spec.localDir); the local_dir step matches user shed to its owner. */
  localDir?: CheckedLocalDir;
  storage?: StorageResult;
  /** The container or VM this create made (set once it exists), so the undo removes exactly it. */
  created?: CreatedHandle;
}

/** The seed's Create Sequence, steps 1-8 (step 9, auto-sync, runs in the CLI). */
export const CREATE_STEPS: readonly Step<CreateContext>[] = [
  {
    id: "storage",
    title: "Storage setup",
    fatal: true,
    async run(ctx, io) {
      if (ctx.spec.localDir) return { outcome: "done", message: `bind mount of ${ctx.spec.localDir}` };
      ctx.storage = await ctx.backend.prepareStorage(ctx.spec);
      if (!ctx.storage.reused) return { outcome: "done", message: "workspace volume created" };
      const kept = ctx.prov.meta.kept(ctx.spec.name);
      if (kept)
        return { outcome: "done", message: `reusing the workspace kept by \`delete --keep-volume\` (${kept.kept_at})` };
      // Not recorded as kept (an older Shed's keep, or a container removed by hand): reused, but never silently.
      io.warn(
        `reusing the workspace volume of an earlier shed ${JSON.stringify(ctx.spec.name)} that this server has no record of keeping; its files stay (a --repo is cloned only into an empty workspace)`,
        `for an empty workspace: \`shed delete ${ctx.spec.name}\` (without --keep-volume it removes the workspace too), then create it again`,
      );
      return { outcome: "done", message: "reusing a workspace volume found on the engine" };
    },
    async undo(ctx) {
      if (ctx.storage?.created) await ctx.backend.removeStorage(ctx.spec.name);
    },
  },
  {
    id: "start",
    title: "Container start",
    fatal: true,
    async run(ctx) {
      ctx.created = await ctx.backend.createAndStart(ctx.spec);
      await waitForExec(ctx);
      return { outcome: "done" };
    },
    async undo(ctx) {
      // By id, never by name: when the name was taken by someone else's container, nothing was made and nothing goes.
      if (ctx.created) await ctx.backend.removeCreated(ctx.created);
    },
  },
  LOCAL_DIR_STEP,
  {
    id: "credentials",
    title: "Credential setup",
    fatal: false,
    // Before the clone and the hooks, so both can use SSH keys and tokens.
    async run(ctx, io) {
      for (const c of ctx.missingCredentials) {
        io.warn(
          `credential ${c.name}: source ${c.source} does not exist; not mounted at ${c.target}`,
          `create ${c.source} on the server or remove credentials.${c.name} from its config`,
        );
      }
      if (ctx.backend.capabilities.credentialMechanism === "bind_mount") {
        // Direct mounts are in place since container creation; staged ones are copied now (src/guest/credentials.ts).
        const n = ctx.spec.credentials.length;
        const summary = await setUpCredentials(ctx.backend.guest(ctx.spec.name), ctx.spec.credentials, io.warn);
        return { outcome: "done", message: `${n} credential${n === 1 ? "" : "s"}: ${summary}` };
      }
      if (ctx.spec.credentials.length === 0 && ctx.missingCredentials.length === 0)
        return { outcome: "skipped", reason: "no credentials configured" };
      throw new ShedError("NOT_SUPPORTED", `credential transfer is not implemented for ${ctx.backend.name}`);
    },
  },
  {
    id: "clone",
    title: "Repo clone",
    fatal: false,
    async run(ctx, io) {
      if (ctx.spec.localDir) return { outcome: "skipped", reason: "--local-dir: the directory is the workspace" };
      if (!ctx.repo) {
        // Nothing was cloned into a new volume: no provision file to look for.
        ctx.prov.workspaceEmpty = ctx.storage?.reused !== true;
        return { outcome: "skipped", reason: "no --repo" };
      }
      const result = await cloneRepo(ctx.backend.guest(ctx.spec.name), ctx.repo, shedBaseEnv(ctx.spec.name), io);
      return result.cloned
        ? { outcome: "done", message: result.message }
        : { outcome: "skipped", reason: result.reason };
    },
  },
  READ_PROVISION_STEP,
  INSTALL_STEP,
  PATH_CAPTURE_STEP,
  STARTUP_STEP,
];

/**
 * The container is up when a process can be exec'd in it. The first exec also
 * prepares the hook folders, so readiness costs no extra round trip; only when
 * it fails is the container's state looked at, to say why.
 */
async function waitForExec(ctx: CreateContext): Promise<void> {
  const guest = ctx.backend.guest(ctx.spec.name);
  let last = "";
  for (let i = 0; i < 20; i++) {
    try {
      const prepared = await prepareGuest(guest);
      if (prepared.ok) return;
      last = prepared.reason;
      if (prepared.noShedUser) break;
    } catch (err) {
      last = (err as Error).message;
    }
    const shed = await ctx.backend.get(ctx.spec.name);
    if (shed?.status !== "running") {
      last = "it exited right after starting";
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ShedError("BACKEND_ERROR", `the shed started but cannot run commands: ${last}`, {
    hint: "the image needs /bin/sh, bash, git and a user named shed; `npm run build-image` makes one",
  });
}
