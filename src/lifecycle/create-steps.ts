import type { Backend, CreatedHandle, CreateSpec, StorageResult } from "../backends/backend.js";
import type { CredentialConfig } from "../config/server-config.js";
import { shedBaseEnv } from "../core/types.js";
import { cloneRepo, type RepoSource } from "../guest/clone.js";
import type { GuestUser } from "../guest/guest-user.js";
import { DEVCONTAINER_STEP, type DevcontainerAtCreate } from "./devcontainer-create.js";
import { userAtCreate } from "./devcontainer-user.js";
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
  storage?: StorageResult;
  /** The container or VM this create made (set once it exists), so the undo removes exactly it. */
  created?: CreatedHandle;
  /** devcontainer.json from the request (issue 13). */
  devcontainer?: DevcontainerAtCreate;
  /** A repo URL whose devcontainer.json the server reads from a shallow fetch on its host. */
  devcontainerLookup?: { name?: string; imageGiven: boolean };
  /** Whose the shed's work is (shed, or the file's remoteUser); looked up once the guest runs. */
  user?: GuestUser;
}

/** The shed's user, looked up once (before the credentials step needs it). */
async function shedUser(ctx: CreateContext): Promise<GuestUser> {
  ctx.user ??= await userAtCreate(
    ctx.backend.guest(ctx.spec.name),
    ctx.devcontainer?.plan,
    ctx.spec.localDir !== undefined,
  );
  return ctx.user;
}

/** The seed's Create Sequence, steps 1-8 (step 9, auto-sync, runs in the CLI). */
export const CREATE_STEPS: readonly Step<CreateContext>[] = [
  {
    id: "storage",
    title: "Storage setup",
    fatal: true,
    async run(ctx, io) {
      ctx.storage = await ctx.backend.prepareStorage(ctx.spec);
      if (!ctx.storage.reused) return { outcome: "done", message: ctx.storage.message };
      const kept = ctx.prov.meta.kept(ctx.spec.name);
      if (kept)
        return { outcome: "done", message: `reusing the workspace kept by \`delete --keep-volume\` (${kept.kept_at})` };
      // Not recorded as kept (an older Shed's keep, or a container removed by hand): reused, but never silently.
      io.warn(
        `reusing the workspace of an earlier shed ${JSON.stringify(ctx.spec.name)} that this server has no record of keeping; its files stay (a --repo is cloned only into an empty workspace)`,
        `for an empty workspace: \`shed delete ${ctx.spec.name}\` (without --keep-volume it removes the workspace too), then create it again`,
      );
      return { outcome: "done", message: `${ctx.storage.message} (found, not recorded as kept)` };
    },
    async undo(ctx) {
      if (ctx.storage?.created) await ctx.backend.removeStorage(ctx.spec.name);
    },
  },
  DEVCONTAINER_STEP,
  {
    id: "start",
    title: "Container/VM start",
    fatal: true,
    async run(ctx, io) {
      ctx.created = await ctx.backend.boot(ctx.spec, (text) => io.output("stdout", text));
      // What boot did beyond starting (an image without user shed completed, say).
      for (const w of ctx.created.warnings ?? []) io.warn(w.message, w.hint);
      const notes = ctx.created.notes ?? [];
      return notes.length ? { outcome: "done", message: notes.join("; ") } : { outcome: "done" };
    },
    async undo(ctx) {
      // By id, never by name: when the name was taken by someone else's container, nothing was made and nothing goes.
      if (ctx.created) await ctx.backend.removeCreated(ctx.created);
    },
  },
  {
    id: "local_dir",
    title: "Local-dir mount",
    fatal: true,
    async run(ctx, io) {
      const { localDir } = ctx.spec;
      if (!localDir) return { outcome: "skipped", reason: "no --local-dir" };
      return ctx.backend.mountLocalDir({ ...ctx.spec, localDir }, io.warn);
    },
  },
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
      return ctx.backend.setUpCredentials(ctx.spec, await shedUser(ctx), io.warn);
    },
  },
  {
    id: "clone",
    title: "Repo clone",
    fatal: false,
    async run(ctx, io) {
      if (ctx.spec.localDir) return { outcome: "skipped", reason: "--local-dir: the directory is the workspace" };
      const user = await shedUser(ctx);
      if (!ctx.repo) {
        // Nothing was cloned into a new volume: no provision file to look for.
        ctx.prov.workspaceEmpty = ctx.storage?.reused !== true;
        return { outcome: "skipped", reason: "no --repo" };
      }
      const result = await cloneRepo(ctx.backend.guest(ctx.spec.name), user, ctx.repo, shedBaseEnv(ctx.spec.name), io);
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
