import type Docker from "dockerode";
import { ShedError } from "../../core/errors.js";
import { backendError, dockerStatus, engineMessage, engineUnreachable } from "./docker-errors.js";

interface PullEvent {
  id?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * devcontainer.json's `image` on Docker: used as it is when the engine has it,
 * else pulled through the engine (its credentials, its registry mirrors), the
 * engine's progress streamed as the step's output, one line per layer and
 * status change (not every byte count). A pull that fails names the image and
 * the engine's reason; nothing of the shed exists yet then but its storage,
 * which the failed step's create undoes.
 */
export async function pullIfMissing(
  docker: Docker,
  image: string,
  onOutput: (text: string) => void,
): Promise<{ pulled: boolean }> {
  try {
    await docker.getImage(image).inspect();
    return { pulled: false };
  } catch (err) {
    if (dockerStatus(err) !== 404) throw backendError(`inspect image ${image}`, err);
  }
  onOutput(`[shed] ${image} is not on the engine: pulling it\n`);
  let failure: string | undefined;
  try {
    const stream = await docker.pull(image);
    const last = new Map<string, string>();
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (err) => (err ? reject(err) : resolve()),
        (ev: PullEvent) => {
          if (ev.error) failure = ev.errorDetail?.message ?? ev.error;
          if (!ev.status) return;
          const key = ev.id ?? "";
          if (last.get(key) === ev.status) return;
          last.set(key, ev.status);
          onOutput(`${ev.id ? `${ev.id}: ` : ""}${ev.status}\n`);
        },
      );
    });
  } catch (err) {
    if (engineUnreachable(err)) throw backendError(`pull ${image}`, err);
    failure = engineMessage(err);
  }
  if (failure) {
    throw new ShedError(
      "IMAGE_NOT_FOUND",
      `image ${JSON.stringify(image)} is not on this server and could not be pulled: ${failure.trim().slice(0, 500)}`,
      {
        hint: "check the name and tag in devcontainer.json's image; for a private registry, log the server's engine in (docker login); or pull or build it on the server",
      },
    );
  }
  return { pulled: true };
}
