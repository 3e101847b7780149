import { PROVISION_MAX_BYTES, PROVISION_PATH } from "../config/provision-file.js";
import { type GuestExec, runCollect } from "./exec.js";
import { INSTALL_STATE_FILE } from "./install-state.js";

export interface WorkspaceProvision {
  /** The text of .shed/provision.yaml; undefined when the workspace has none or it is too large. */
  text: string | undefined;
  /** The file exists but is larger than PROVISION_MAX_BYTES: it was not read (a warning, like any bad file). */
  tooLarge: boolean;
  /** Whether the install state file records a completed install. */
  installDone: boolean;
}

/**
 * Reads the provision file and the install state in one exec. At most
 * PROVISION_MAX_BYTES + 1 bytes of the file ever leave the guest: a hook can
 * make the file any size, and it is read on every start and stop.
 */
export async function readWorkspaceProvision(guest: GuestExec): Promise<WorkspaceProvision> {
  const script = [
    'if [ -f "$2" ]; then echo done; else echo pending; fi',
    'if [ ! -f "$1" ]; then echo missing; exit 0; fi',
    // Count at most cap+1 bytes (never the whole file), then send at most as many.
    'if [ "$(head -c "$3" -- "$1" | wc -c)" -ge "$3" ]; then echo too_large; exit 0; fi',
    'echo found; exec head -c "$3" -- "$1"',
  ].join("\n");
  const r = await runCollect(guest, {
    argv: [
      "sh",
      "-c",
      script,
      "shed-provision",
      `/workspace/${PROVISION_PATH}`,
      INSTALL_STATE_FILE,
      String(PROVISION_MAX_BYTES + 1),
    ],
  });
  if (r.exitCode !== 0) throw new Error(`could not read ${PROVISION_PATH}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  const first = r.stdout.indexOf("\n");
  const second = r.stdout.indexOf("\n", first + 1);
  const state = r.stdout.slice(first + 1, second);
  return {
    installDone: r.stdout.slice(0, first) === "done",
    tooLarge: state === "too_large",
    text: state === "found" ? r.stdout.slice(second + 1) : undefined,
  };
}
