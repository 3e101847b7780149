import { ShedError } from "../core/errors.js";
import { WORKSPACE } from "../core/types.js";
import { DEFAULT_GUEST_UID, type Warn } from "../guest/credentials.js";
import type { GuestExec } from "../guest/exec.js";
import { matchShedUserTo } from "../guest/shed-user.js";
import { workspaceIdentity } from "../guest/workspace-identity.js";
import type { CreateContext } from "./create-steps.js";
import type { CheckedLocalDir } from "./local-dir-policy.js";
import type { Step } from "./steps.js";

/**
 * The uid user shed gets in a new shed: a --local-dir's owner (root excepted),
 * else the image's. Credentials are planned with it (src/guest/credentials.ts),
 * because their mounts are fixed when the container is made.
 */
export function plannedShedUid(dir: CheckedLocalDir | undefined): number {
  return dir && dir.uid !== 0 ? dir.uid : DEFAULT_GUEST_UID;
}

const RECREATE = "then `shed delete` the shed and create it again";

/**
 * Create step 3. The directory is mounted when the container is made; this
 * step proves the mount shows the directory the server checked, then gives
 * user shed the directory owner's uid and gid, before anything runs as shed.
 */
export const LOCAL_DIR_STEP: Step<CreateContext> = {
  id: "local_dir",
  title: "Local-dir mount",
  fatal: true,
  async run(ctx, io) {
    const dir = ctx.localDir;
    if (!dir) return { outcome: "skipped", reason: "no --local-dir" };
    if (ctx.backend.capabilities.localDir !== "bind_mount") {
      throw new ShedError("NOT_SUPPORTED", `--local-dir is not supported on the ${ctx.backend.name} backend`);
    }
    const guest = ctx.backend.guest(ctx.spec.name);
    const seen = await workspaceIdentity(guest);
    if (seen.dev !== dir.dev || seen.ino !== dir.ino) {
      throw new ShedError(
        "LOCAL_DIR_REFUSED",
        `the directory mounted at ${WORKSPACE} is not ${dir.path} as checked: a part of its path changed between the check and the mount`,
        { hint: "make sure nobody else can rename or replace the directories along that path, and try again" },
      );
    }
    return { outcome: "done", message: `bind mount of ${dir.path}; ${await matchOwner(ctx, guest, dir, io.warn)}` };
  },
};

async function matchOwner(ctx: CreateContext, guest: GuestExec, dir: CheckedLocalDir, warn: Warn): Promise<string> {
  if (dir.uid === 0) {
    const othersWrite = (dir.mode & 0o002) !== 0;
    warn(
      othersWrite
        ? `${dir.path} is owned by root on the server: user shed can write it only because its mode lets anyone write, and what it writes belongs to uid ${DEFAULT_GUEST_UID} on the server`
        : `${dir.path} is owned by root on the server: user shed cannot write it`,
      `chown it to your own user on the server (chown -R YOU: ${dir.path}) or pick a directory you own, ${RECREATE}`,
    );
    return "owned by root, user shed keeps its uid";
  }
  const change = await matchShedUserTo(guest, dir.uid, dir.gid);
  if (change.kind === "unchanged") return `user shed already has the owner's uid ${dir.uid} and gid ${dir.gid}`;
  if (change.kind === "uid_taken") {
    warn(
      `uid ${dir.uid}, the owner of ${dir.path}, is the account ${JSON.stringify(change.account)} in the image; ` +
        "user shed keeps its own uid so that account stays separate, so the shed can write the directory only where its mode lets others write",
      `chown the directory to a uid that is no account in the image (your own user's), ${RECREATE}`,
    );
    // These were mounted live because their source has the owner's uid, which shed did not get.
    const live = ctx.spec.credentials.filter((c) => c.mode === "direct").map((c) => c.name);
    if (live.length > 0) {
      warn(
        `credentials ${live.join(", ")} are mounted live owned by uid ${dir.uid} (${change.account} in the image), not by user shed`,
        `chown their sources to another owner so they are copied for user shed, ${RECREATE}`,
      );
    }
    return "user shed keeps its uid";
  }
  if (change.existingGroup) {
    warn(
      `gid ${dir.gid}, the group of ${dir.path}, is the group ${JSON.stringify(change.existingGroup)} in the image; ` +
        "it is now user shed's primary group (the group itself is unchanged), so what the shed writes gets that gid on the server",
    );
  }
  return `user shed now has the owner's uid ${dir.uid} and gid ${dir.gid}`;
}
