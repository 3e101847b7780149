import { ShedError } from "../../core/errors.js";
import type { GuestExec } from "../../guest/exec.js";
import { prepareGuest } from "../../guest/install-state.js";

/**
 * A container is up when a process can be exec'd in it; `docker start`
 * returns before that, so the first exec is retried briefly. That exec also
 * prepares Shed's folders, so readiness costs no extra round trip. Only when
 * it fails is the container's state looked at, to say why.
 */
export async function waitForExec(guest: GuestExec, isRunning: () => Promise<boolean>): Promise<void> {
  let last = "";
  for (let i = 0; i < 20; i++) {
    try {
      const prepared = await prepareGuest(guest);
      if (prepared.ok) return;
      last = prepared.reason;
      if (prepared.noShedUser) break;
    } catch (err) {
      last = (err as Error).message;
    }
    if (!(await isRunning())) {
      last = "it exited right after starting";
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ShedError("BACKEND_ERROR", `the shed started but cannot run commands: ${last}`, {
    hint: "the image needs /bin/sh, bash, git and a user named shed: `npm run build-image` makes one, and a devcontainer.json can build one FROM shed-base:latest",
  });
}
