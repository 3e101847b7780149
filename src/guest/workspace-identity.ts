import { ShedError } from "../core/errors.js";
import { WORKSPACE } from "../core/types.js";
import { type GuestExec, runCollect } from "./exec.js";

/**
 * The device and inode numbers of /workspace as the guest sees them (decimal
 * strings: inode numbers can pass 2^53). On a bind mount they are the host
 * directory's own, so comparing them with the directory the server checked
 * proves the mount shows that directory, even if a path component was swapped
 * for a symlink between the check and the mount.
 */
export async function workspaceIdentity(guest: GuestExec): Promise<{ dev: string; ino: string }> {
  const r = await runCollect(guest, { argv: ["stat", "-c", "%d %i", "--", WORKSPACE], user: "root" });
  const m = /^(\d+) (\d+)$/.exec(r.stdout.trim());
  if (r.exitCode !== 0 || !m?.[1] || !m[2]) {
    throw new ShedError(
      "BACKEND_ERROR",
      `could not stat ${WORKSPACE} in the shed: ${r.stderr.trim() || `exit ${r.exitCode}`}`,
    );
  }
  return { dev: m[1], ino: m[2] };
}
