import { ShedError } from "../../core/errors.js";
import { type CompletionOptions, completeImage } from "../../guest/complete-image.js";
import type { ImageCompletion } from "../../guest/complete-image-summary.js";
import type { GuestExec } from "../../guest/exec.js";
import { prepareGuest } from "../../guest/install-state.js";

/**
 * A container is up when a process can be exec'd in it; `docker start`
 * returns before that, so the first exec is retried briefly. That exec also
 * prepares Shed's folders, so readiness costs no extra round trip. Only when
 * it fails is the container's state looked at, to say why.
 *
 * An image without user shed (a devcontainer.json's `image`, say) is completed
 * once (src/guest/complete-image.ts), then prepared again; what was done is
 * returned for create to show. `workspaceIsVolume`: /workspace is the shed's
 * own volume, not a --local-dir (which is never re-owned); `liveCredentials`:
 * some credential is mounted live with the server's uid 1000.
 */
export async function waitForExec(
  guest: GuestExec,
  isRunning: () => Promise<boolean>,
  opts: CompletionOptions,
): Promise<ImageCompletion | undefined> {
  let last = "";
  let completion: ImageCompletion | undefined;
  for (let i = 0; i < 20; i++) {
    let noShedUser = false;
    try {
      const prepared = await prepareGuest(guest);
      if (prepared.ok) return completion;
      last = prepared.reason;
      noShedUser = prepared.noShedUser;
    } catch (err) {
      last = (err as Error).message;
    }
    if (noShedUser) {
      // Once: a second miss means the completion did not take. Its own errors end the create.
      if (completion) {
        last = "user shed was added but is not there";
        break;
      }
      completion = await completeImage(guest, opts);
      continue;
    }
    if (!(await isRunning())) {
      last = "it exited right after starting";
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ShedError("BACKEND_ERROR", `the shed started but cannot run commands: ${last}`, {
    hint: "the image needs /bin/sh (Shed adds user shed, sudo, bash and git where it can): `npm run build-image` makes one that has all of it, and a devcontainer.json can build one FROM shed-base:latest",
  });
}
