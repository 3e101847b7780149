import { PROVISION_PATH } from "../config/provision-file.js";
import { type GuestExec, runCollect } from "./exec.js";
import { INSTALL_STATE_FILE } from "./install-state.js";

export interface WorkspaceProvision {
  /** The text of .shed/provision.yaml; undefined when the workspace has none. */
  text: string | undefined;
  /** Whether the install state file records a completed install. */
  installDone: boolean;
}

/** Reads the provision file and the install state in one exec. */
export async function readWorkspaceProvision(guest: GuestExec): Promise<WorkspaceProvision> {
  const script = [
    'if [ -f "$2" ]; then echo done; else echo pending; fi',
    'if [ -f "$1" ]; then echo found; exec cat -- "$1"; else echo missing; fi',
  ].join("\n");
  const r = await runCollect(guest, {
    argv: ["sh", "-c", script, "shed-provision", `/workspace/${PROVISION_PATH}`, INSTALL_STATE_FILE],
  });
  if (r.exitCode !== 0) throw new Error(`could not read ${PROVISION_PATH}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  const first = r.stdout.indexOf("\n");
  const second = r.stdout.indexOf("\n", first + 1);
  const found = r.stdout.slice(first + 1, second) === "found";
  return { installDone: r.stdout.slice(0, first) === "done", text: found ? r.stdout.slice(second + 1) : undefined };
}
