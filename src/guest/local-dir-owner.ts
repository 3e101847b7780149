import type { Warn } from "../core/events.js";
import type { GuestExec } from "./exec.js";
import { DEFAULT_GUEST_UID, matchShedUserTo } from "./shed-user.js";

const RECREATE = "then `shed delete` the shed and create it again";

/** The host directory mounted at /workspace, as the server checked it. */
export interface MountedDir {
  path: string;
  uid: number;
  gid: number;
  mode: number;
}

/**
 * Gives user shed the --local-dir owner's uid and gid (shed-user.ts), before
 * anything runs as shed, and warns where that cannot be done. `liveCredentials`
 * names credentials mounted live with the owner's uid (they stay owned by it).
 * Returns the step's message.
 */
export async function matchOwner(
  guest: GuestExec,
  dir: MountedDir,
  liveCredentials: readonly string[],
  warn: Warn,
): Promise<string> {
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
    if (liveCredentials.length > 0) {
      warn(
        `credentials ${liveCredentials.join(", ")} are mounted live owned by uid ${dir.uid} (${change.account} in the image), not by user shed`,
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
