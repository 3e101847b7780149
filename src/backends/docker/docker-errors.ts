import { ShedError } from "../../core/errors.js";
import { quote } from "../../core/quote.js";

/** Docker engine errors carry an HTTP status; map the ones users can act on. */
export function dockerStatus(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  return typeof s === "number" ? s : undefined;
}

/**
 * What the engine said. A request whose answer was streamed (a pull, a build)
 * carries no parsed body, and dockerode words its error as "(HTTP code 404)
 * unexpected - <the engine's message>": only the engine's part says what was wrong.
 */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } })?.json;
  if (json && typeof json.message === "string") return json.message;
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, "");
}

/**
 * Socket errors that mean the engine is not there (stopped, restarting, or not
 * ours to use), as opposed to the engine refusing a request: no socket, nobody
 * listening, or a connection the engine dropped while it shut down.
 */
const UNREACHABLE = new Set(["ENOENT", "ECONNREFUSED", "EACCES", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"]);

/** True when the error says the engine could not be reached at all. */
export function engineUnreachable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return dockerStatus(err) === undefined && code !== undefined && UNREACHABLE.has(code);
}

export function backendError(what: string, err: unknown): ShedError {
  if (engineUnreachable(err)) {
    const e = err as NodeJS.ErrnoException & { address?: unknown; port?: unknown };
    const where = typeof e.address === "string" ? ` at ${quote(e.port ? `${e.address}:${e.port}` : e.address)}` : "";
    return new ShedError("BACKEND_ERROR", `${what}: cannot reach the Docker engine${where} (${e.code})`, {
      hint:
        e.code === "EACCES"
          ? "run shed-server as a user that may use the engine's socket (root, or a member of the docker group)"
          : // Each request opens its own connection: nothing needs restarting once the engine is back.
            "the Docker engine is stopped or restarting: start dockerd (or fix docker_host in the server config, " +
            "or DOCKER_HOST); shed-server reconnects by itself, so retry once `docker info` answers",
      cause: err,
    });
  }
  return new ShedError("BACKEND_ERROR", `${what}: ${engineMessage(err)}`, { cause: err });
}
