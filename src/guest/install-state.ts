import { type GuestExec, runCollect } from "./exec.js";
import { KNOWN_HOSTS_FILE, KNOWN_HOSTS_INPUT, KNOWN_HOSTS_SCRIPT } from "./known-hosts-seed.js";

/**
 * The state file inside the guest that records a completed install hook
 * (seed: "state file marks completion"). The hook script writes it, only after
 * the install exited 0, atomically (temp file + rename), so a failed,
 * timed-out or interrupted install is never marked done.
 */
export const INSTALL_STATE_FILE = "/var/lib/shed/install.done";

/**
 * Makes the folders hooks write to, owned by user shed, and proves the guest
 * runs commands (the readiness check of create, in the same exec). Images
 * other than shed-base may lack the folders; an image without user shed is
 * reported plainly.
 */
export type PrepareResult = { ok: true } | { ok: false; reason: string; noShedUser: boolean };

export async function prepareGuest(guest: GuestExec): Promise<PrepareResult> {
  // In the same exec, known_hosts is seeded (known-hosts-seed.ts): no extra round trip on create.
  const r = await runCollect(
    guest,
    {
      argv: [
        "sh",
        "-c",
        'id -u shed >/dev/null 2>&1 || { echo "the image has no user named shed" >&2; exit 3; }\n' +
          "mkdir -p /var/log/shed /var/lib/shed && chown shed: /var/log/shed /var/lib/shed\n" +
          'sh -c "$1" shed-known-hosts "$2" >/dev/null; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 5 ] || echo "known_hosts not seeded" >&2',
        "shed-prepare",
        KNOWN_HOSTS_SCRIPT,
        KNOWN_HOSTS_FILE,
      ],
      user: "root",
    },
    KNOWN_HOSTS_INPUT,
  );
  if (r.exitCode === 0) return { ok: true };
  return { ok: false, reason: r.stderr.trim() || `exit ${r.exitCode}`, noShedUser: r.exitCode === 3 };
}
