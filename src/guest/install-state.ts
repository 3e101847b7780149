import { type GuestExec, runCollect } from "./exec.js";

/**
 * The state file inside the guest that records a completed install hook
 * (seed: "state file marks completion"). Written only after the install
 * succeeded, atomically (temp file + rename), so a failed, timed-out or
 * interrupted install is never marked done.
 */
export const INSTALL_STATE_FILE = "/var/lib/shed/install.done";

export async function installDone(guest: GuestExec): Promise<boolean> {
  const r = await runCollect(guest, { argv: ["test", "-f", INSTALL_STATE_FILE], user: "root" });
  return r.exitCode === 0;
}

export async function markInstallDone(guest: GuestExec, script: string): Promise<void> {
  const body = `${JSON.stringify({ completed_at: new Date().toISOString(), script })}\n`;
  const r = await runCollect(
    guest,
    {
      argv: [
        "sh",
        "-c",
        'mkdir -p "${1%/*}" && cat >"$1.tmp" && mv -f "$1.tmp" "$1"',
        "shed-state",
        INSTALL_STATE_FILE,
      ],
      user: "root",
    },
    body,
  );
  if (r.exitCode !== 0) throw new Error(`could not write ${INSTALL_STATE_FILE}: ${r.stderr.trim()}`);
}

/** Makes the folders hooks write to, owned by user shed (images other than shed-base may lack them). */
export async function prepareHookDirs(guest: GuestExec): Promise<void> {
  await runCollect(guest, {
    argv: ["sh", "-c", "mkdir -p /var/log/shed /var/lib/shed && chown shed: /var/log/shed"],
    user: "root",
  });
}
