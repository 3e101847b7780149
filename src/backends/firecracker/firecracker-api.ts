import { request as httpRequest, type IncomingMessage } from "node:http";
import { ShedError } from "../../core/errors.js";
import { quote } from "../../core/quote.js";
import type { FirecrackerRequest } from "./firecracker-plan.js";

/**
 * A small client for Firecracker's REST API on its Unix socket (node:http with socketPath). One
 * connection per request, closed after it: Firecracker serves one client at a time, and a
 * connection kept open would hold the socket for nothing.
 *
 * Firecracker answers 204 to a request it applied, and 400 (or 500) with
 * `{"fault_message": "..."}` to one it refused. What comes back is bounded: the answer's headers
 * by maxHeaderSize, its body by maxResponseBytes (a stand-in or a broken peer streaming without
 * end must not make the server buffer without limit), and the whole exchange by timeoutMs.
 */

export interface FirecrackerApiOptions {
  /** The most one request may take, connection included. */
  timeoutMs?: number;
  /** The most of an answer's body that is read; Firecracker's largest (GET /vm/config) is a few KiB. */
  maxResponseBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE = 64 * 1024;
const MAX_HEADER_BYTES = 16 * 1024;
/** How much of a refusal's text goes into the error message. */
const MAX_FAULT_SHOWN = 300;
/** Where Firecracker's own words end up (its stdout and stderr, kept by the machine in the instance directory). */
const SEE_LOG = "Firecracker's output in the instance directory (serial.log, hypervisor.err)";

interface Answer {
  status: number;
  body: Buffer;
}

export class FirecrackerApi {
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(
    private readonly socketPath: string,
    opts: FirecrackerApiOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
  }

  /** Sends one request; resolves when Firecracker has applied it (any 2xx). */
  async send(req: FirecrackerRequest): Promise<void> {
    const answer = await this.exchange(req.method, req.path, req.body);
    if (answer.status >= 200 && answer.status < 300) return;
    throw this.refused(`${req.method} ${req.path}`, answer);
  }

  /** Sends the requests in order, stopping at (and throwing) the first failure. */
  async apply(plan: readonly FirecrackerRequest[]): Promise<void> {
    for (const req of plan) await this.send(req);
  }

  /** A GET (e.g. `/` for the instance's state, `/version`): the parsed JSON answer. */
  async get(path: string): Promise<unknown> {
    const what = `GET ${path}`;
    const answer = await this.exchange("GET", path, undefined);
    if (answer.status < 200 || answer.status >= 300) throw this.refused(what, answer);
    try {
      return JSON.parse(answer.body.toString("utf8"));
    } catch {
      throw new ShedError("BACKEND_ERROR", `Firecracker's answer to ${what} is not JSON: ${excerpt(answer.body)}`, {
        hint: `check that ${this.socketPath} is a Firecracker API socket`,
      });
    }
  }

  private refused(what: string, answer: Answer): ShedError {
    return new ShedError("BACKEND_ERROR", `Firecracker refused ${what}: ${faultMessage(answer)}`, {
      hint:
        `${SEE_LOG} may say more; \`shed-server vm-plan --backend firecracker NAME\` prints every request, ` +
        "and Shed needs Firecracker 1.8 or later (`firecracker --version`)",
      details: { status: answer.status },
    });
  }

  private exchange(method: string, path: string, body: Record<string, unknown> | undefined): Promise<Answer> {
    const what = `${method} ${path}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), "utf8");
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, answer?: Answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(answer as Answer);
      };
      const headers: Record<string, string | number> = { Accept: "application/json" };
      // Firecracker's HTTP server reads a body by its Content-Length; it does not take chunked bodies.
      if (payload) {
        headers["Content-Type"] = "application/json";
        headers["Content-Length"] = payload.length;
      }
      const req = httpRequest({
        socketPath: this.socketPath,
        path,
        method,
        headers,
        agent: false,
        maxHeaderSize: MAX_HEADER_BYTES,
      });
      const timer = setTimeout(() => {
        finish(
          new ShedError(
            "TIMEOUT",
            `Firecracker did not answer ${what} within ${this.timeoutMs} ms (API socket ${this.socketPath})`,
            { hint: `Firecracker may be hung or overloaded; ${SEE_LOG} may say why` },
          ),
        );
      }, this.timeoutMs);
      req.on("error", (err) => finish(this.connectionError(what, err)));
      req.on("response", (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxResponseBytes) {
            finish(
              new ShedError(
                "BACKEND_ERROR",
                `Firecracker's answer to ${what} is larger than ${this.maxResponseBytes} bytes; it was not read`,
                { hint: `check that ${this.socketPath} is a Firecracker API socket` },
              ),
            );
            // After finish: destroying first would report the cut-off answer instead of its size.
            res.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", (err) => finish(this.connectionError(what, err)));
        res.on("aborted", () => finish(this.connectionError(what, new Error("the answer was cut off"))));
      });
      req.end(payload);
    });
  }

  private connectionError(what: string, err: Error): ShedError {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "it does not exist"
        : code === "ECONNREFUSED"
          ? "nothing listens on it"
          : code === "EACCES"
            ? "permission denied"
            : err.message;
    return new ShedError(
      "BACKEND_ERROR",
      `cannot send ${what} to Firecracker's API socket ${this.socketPath}: ${why}`,
      {
        hint: `Firecracker is not running or has not created its API socket yet; ${SEE_LOG} may say why`,
        cause: err,
      },
    );
  }
}

/** Firecracker's fault_message, or the start of whatever else the body holds. */
function faultMessage(answer: Answer): string {
  const text = answer.body.toString("utf8");
  try {
    const parsed = JSON.parse(text) as { fault_message?: unknown };
    if (typeof parsed?.fault_message === "string") return clip(parsed.fault_message);
  } catch {
    // Not JSON: shown as it is below.
  }
  return `HTTP ${answer.status}${text.trim() === "" ? " without a fault message" : ` ${excerpt(answer.body)}`}`;
}

function clip(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters must not reach a log line or terminal
  const clean = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return clean.length <= MAX_FAULT_SHOWN ? clean : `${clean.slice(0, MAX_FAULT_SHOWN)}… (${clean.length} characters)`;
}

function excerpt(body: Buffer): string {
  return quote(body.toString("utf8"), MAX_FAULT_SHOWN);
}
