import { ShedError } from "../../core/errors.js";

/** Docker engine errors carry an HTTP status; map the ones users can act on. */
export function dockerStatus(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  return typeof s === "number" ? s : undefined;
}

export function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } })?.json;
  if (json && typeof json.message === "string") return json.message;
  return err instanceof Error ? err.message : String(err);
}

export function backendError(what: string, err: unknown): ShedError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ENOENT" || code === "ECONNREFUSED" || code === "EACCES") {
    return new ShedError("BACKEND_ERROR", `${what}: cannot reach the Docker engine (${code})`, {
      hint: "start dockerd (or check DOCKER_HOST) and make sure this user may use /var/run/docker.sock",
      cause: err,
    });
  }
  return new ShedError("BACKEND_ERROR", `${what}: ${engineMessage(err)}`, { cause: err });
}
