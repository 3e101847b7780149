import type { DevcontainerPlan } from "../config/devcontainer/map.js";
import { GUEST_USER } from "../core/types.js";

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
