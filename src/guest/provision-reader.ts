import { posix } from "node:path";
import { PROVISION_MAX_BYTES, PROVISION_PATH } from "../config/provision-file.js";
import { WORKSPACE } from "../core/types.js";
import { type GuestExec, runCollect } from "./exec.js";
import { readBelow } from "./host-file.js";
import { INSTALL_STATE_FILE } from "./install-state.js";

export interface WorkspaceProvision {
  /** The text of .shed/provision.yaml; undefined when the workspace has none or it is too large. */
  text: string | undefined;
  /** The file exists but is larger than PROVISION_MAX_BYTES: it was not read (a warning, like any bad file). */
  tooLarge: boolean;
  /**
   * Whether the install state file records a completed install; undefined when
   * it was not looked at (the file was read on the host, where the state file
   * is not): the install hook's own run then checks it (guest/hook-script.ts).
   */
  installDone: boolean | undefined;
}

/**
 * The provision file as the shed has it now (it is read on every start and
 * stop, so an edit made inside the shed counts). Where the backend keeps the
 * workspace readable on this host (Docker: its volume), it is read there,
 * with no exec; otherwise, or when the host read cannot tell (a symlink in the
 * way, say), one exec reads it with the install state.
 */
export async function readWorkspaceProvision(guest: GuestExec): Promise<WorkspaceProvision> {
  return (await readOnHost(guest)) ?? readInGuest(guest);
}

async function readOnHost(guest: GuestExec): Promise<WorkspaceProvision | undefined> {
  const root = await guest.hostPath?.(WORKSPACE).catch(() => undefined);
  // The file must be in the same volume as /workspace: a mount on .shed (a credential's target) hides it.
  const file = await guest.hostPath?.(`${WORKSPACE}/${PROVISION_PATH}`).catch(() => undefined);
  if (!root || file !== posix.join(root, PROVISION_PATH)) return undefined;
  const found = await readBelow(root, PROVISION_PATH.split("/"), PROVISION_MAX_BYTES + 1);
  if (!found) return undefined;
  if (found.kind === "missing") return { text: undefined, tooLarge: false, installDone: undefined };
  if (found.atLimit) return { text: undefined, tooLarge: true, installDone: undefined };
  return { text: found.bytes.toString("utf8"), tooLarge: false, installDone: undefined };
}

/**
 * Reads the provision file and the install state in one exec. At most
 * PROVISION_MAX_BYTES + 1 bytes of the file ever leave the guest: a hook can
 * make the file any size.
 */
async function readInGuest(guest: GuestExec): Promise<WorkspaceProvision> {
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
      `${WORKSPACE}/${PROVISION_PATH}`,
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
