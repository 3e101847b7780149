import { ShedError } from "../../core/errors.js";
import type { Warn } from "../../core/events.js";
import { WORKSPACE } from "../../core/types.js";
import type { GuestExec } from "../../guest/exec.js";
import { matchOwner } from "../../guest/local-dir-owner.js";
import { workspaceIdentity } from "../../guest/workspace-identity.js";
import type { CellResult, CheckedLocalDir, CreateSpec } from "../backend.js";
import { planCredentials } from "./credentials.js";

/**
 * Create step 3 on Docker. The directory was bind-mounted when the container
 * was made; this proves the mount shows the directory the server checked (a
 * path component swapped for a symlink in between would show another), then
 * gives user shed the directory owner's uid and gid.
 */
export async function verifyLocalDirMount(
  guest: GuestExec,
  spec: CreateSpec & { localDir: CheckedLocalDir },
  warn: Warn,
): Promise<CellResult> {
  const dir = spec.localDir;
  const seen = await workspaceIdentity(guest);
  if (seen.dev !== dir.dev || seen.ino !== dir.ino) {
    throw new ShedError(
      "LOCAL_DIR_REFUSED",
      `the directory mounted at ${WORKSPACE} is not ${dir.path} as checked: a part of its path changed between the check and the mount`,
      { hint: "make sure nobody else can rename or replace the directories along that path, and try again" },
    );
  }
  // Mounted live because their source has the owner's uid: they keep it whatever shed gets.
  const live = planCredentials(spec.credentials, { localDir: dir, remoteUser: spec.remoteUser })
    .filter((c) => c.mode === "direct")
    .map((c) => c.name);
  return { outcome: "done", message: `bind mount of ${dir.path}; ${await matchOwner(guest, dir, live, warn)}` };
}
