import type { DevcontainerPlan } from "../config/devcontainer/map.js";
import { GUEST_USER, WORKSPACE } from "../core/types.js";
import type { GuestExec } from "../guest/exec.js";
import { type GuestUser, handEmptyFolderTo, lookUpGuestUser, SHED_USER } from "../guest/guest-user.js";

/**
 * The guest user a shed's commands run as: `shed exec`, console, attach, SSH
 * sessions (a command, a shell, sftp), postAttachCommand and the forwarded
 * agent's socket. It is devcontainer.json's remoteUser (else containerUser)
 * when provisioning found that user in the image (the record's hookUser, the
 * same user the install and startup stages ran as), else shed: a shed made
 * without a devcontainer.json, or before this was recorded, or whose user the
 * image lacks, keeps running everything as shed. Root only when the file names it.
 */
export function shedCommandUser(plan: DevcontainerPlan | undefined): string {
  const found = plan?.hookUser;
  return found ? found : GUEST_USER;
}

/** The user devcontainer.json names (remoteUser, else containerUser), when it is not shed. */
export function wantedUser(plan: DevcontainerPlan | undefined): string | undefined {
  const wanted = plan?.remoteUser ?? plan?.containerUser;
  return wanted && wanted !== GUEST_USER ? wanted : undefined;
}

/**
 * At create, before the credentials and the clone: the user the shed's work
 * belongs to (the file's user when the image has it, else shed; provisioning
 * warns about a missing one). A fresh, empty workspace is handed to that user,
 * so the clone, the hooks and the user's own commands can write in it.
 */
export async function userAtCreate(
  guest: GuestExec,
  plan: DevcontainerPlan | undefined,
  localDir: boolean,
): Promise<GuestUser> {
  const wanted = wantedUser(plan);
  const user = wanted ? await lookUpGuestUser(guest, wanted) : undefined;
  if (!user) return SHED_USER;
  // A --local-dir is its owner's, whose uid user shed took (src/guest/shed-user.ts).
  if (!localDir) await handEmptyFolderTo(guest, WORKSPACE, user);
  return user;
}

/** At start: the user provisioning found (the record's hookUser), as the guest has it now; shed otherwise. */
export async function userAtStart(guest: GuestExec, plan: DevcontainerPlan | undefined): Promise<GuestUser> {
  const name = shedCommandUser(plan);
  if (name === GUEST_USER) return SHED_USER;
  return (await lookUpGuestUser(guest, name)) ?? SHED_USER;
}
