import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import { fromErrorBody, ShedError } from "../core/errors.js";
import type { ProgressEvent, ProgressSink } from "../core/events.js";
import type { Shed } from "../core/types.js";
import {
  formatVersionHeader,
  OWN_VERSION,
  parseVersionHeader,
  VERSION_HEADER,
  versionMismatch,
} from "../protocol/api-version.js";
import { FRAMES_CONTENT_TYPE, FrameDecoder, PRINT_LINES_HEADER } from "../protocol/event-frames.js";
import type { ServerEntry } from "./client-config.js";
import { baseUrl, sendRequest, type Target, type TransportSecurity } from "./http-transport.js";
import { checkEvent, checkResponse } from "./validate-response.js";

/** Where a server's API is and how to prove who we are to it (client config entry, or a first contact). */
export type Endpoint = Pick<ServerEntry, "host" | "http_port" | "token" | "tls_fingerprint">;

/** Talks to one shed-server's HTTP API, with its token, over TLS pinned to its certificate where it has one. */
export class ApiClient {
  readonly base: string;
  private readonly target: Target;

  constructor(
    readonly serverName: string,
    private readonly endpoint: Endpoint,
    /** Overrides what the entry implies: `server add` probes TLS with trust on first use. */
    security?: TransportSecurity,
  ) {
    this.target = {
      serverName,
      host: endpoint.host,
      port: endpoint.http_port,
      security:
        security ??
        (endpoint.tls_fingerprint ? { kind: "pinned", fingerprint: endpoint.tls_fingerprint } : { kind: "plain" }),
    };
    this.base = baseUrl(this.target);
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await this.send(method, path, payload === undefined ? {} : jsonHeaders(payload), payload);
    const text = await readAll(res);
    const parsed = text ? safeJson(text) : undefined;
    if ((res.statusCode ?? 500) >= 400) throw this.failure(parsed, res.statusCode ?? 500);
    // What a server sends is untrusted: sheds are checked before any command uses them.
    return checkResponse(this.serverName, method, path, parsed) as T;
  }

  async upload(path: string, body: Readable | ReadableStream<Uint8Array>): Promise<{ id: string }> {
    const stream = body instanceof Readable ? body : Readable.fromWeb(body as import("node:stream/web").ReadableStream);
    const res = await this.send("PUT", path, { "content-type": "application/octet-stream" }, stream);
    const parsed = safeJson(await readAll(res));
    if ((res.statusCode ?? 500) >= 400) throw this.failure(parsed, res.statusCode ?? 500);
    return parsed as { id: string };
  }

  /**
   * Runs a lifecycle operation, passing each progress event to `onEvent`; resolves with the final event.
   * With `onPrinted`, the server sends output as lines ready to print instead of output events; when
   * it returns a promise, reading pauses until it settles (so a slow terminal holds the server back,
   * which then leaves out what it cannot send, instead of this process buffering without bound).
   */
  async operation(
    method: string,
    path: string,
    body: unknown,
    onEvent: ProgressSink,
    onPrinted?: (bytes: Buffer) => Promise<void> | undefined,
  ): Promise<ProgressEvent | undefined> {
    // node:http and compact frames rather than fetch and SSE: hook output can be hundreds of megabytes.
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await this.send(
      method,
      path,
      {
        accept: FRAMES_CONTENT_TYPE,
        ...(onPrinted !== undefined ? { [PRINT_LINES_HEADER]: "lines" } : {}),
        ...(payload === undefined ? {} : jsonHeaders(payload)),
      },
      payload,
    );
    const type = String(res.headers["content-type"] ?? "");
    if ((res.statusCode ?? 500) >= 400 || !type.includes(FRAMES_CONTENT_TYPE)) {
      const text = await readAll(res);
      const parsed = text ? safeJson(text) : undefined;
      if ((res.statusCode ?? 500) >= 400) throw this.failure(parsed, res.statusCode ?? 500);
      // A server that does not stream answers with the final shed (or nothing, for delete).
      return parsed && typeof parsed === "object" && "name" in parsed
        ? checkEvent(this.serverName, { type: "result", shed: parsed as Shed })
        : undefined;
    }
    let last: ProgressEvent | undefined;
    const decoder = new FrameDecoder();
    // 'data' events, not async iteration: iteration joins buffered chunks, copying every byte once more.
    await new Promise<void>((resolve, reject) => {
      res.on("data", (chunk: Buffer) => {
        try {
          for (const ev of decoder.push(chunk)) {
            if (ev.type === "printed") {
              const behind = onPrinted?.(ev.bytes);
              if (behind && !res.isPaused()) {
                res.pause();
                void behind.then(() => res.resume());
              }
            } else if (ev.type === "error") {
              throw new ShedError(ev.error.code, ev.error.message, { hint: ev.error.hint, details: ev.error.details });
            } else {
              last = checkEvent(this.serverName, ev);
              onEvent(last);
            }
          }
        } catch (err) {
          res.destroy();
          reject(err);
        }
      });
      res.on("end", resolve);
      res.on("error", reject);
    });
    return last;
  }

  private async send(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body: string | Readable | undefined,
  ): Promise<IncomingMessage> {
    const auth = this.endpoint.token ? { authorization: `Bearer ${this.endpoint.token}` } : {};
    const res = await sendRequest(
      this.target,
      method,
      path,
      { ...headers, ...auth, [VERSION_HEADER]: formatVersionHeader(), "user-agent": `shed/${OWN_VERSION.version}` },
      body,
    );
    this.checkVersion(res);
    return res;
  }

  /**
   * Every answer says which release and API version the server is: an
   * incompatible one is an error naming both and which to upgrade, whatever
   * the answer was (a server from before version checks, or a newer one that
   * still serves this CLI though this CLI no longer supports it, did not refuse).
   */
  private checkVersion(res: IncomingMessage): void {
    const server = parseVersionHeader(res.headers[VERSION_HEADER]);
    const label = `shed-server ${this.serverName} at ${this.base}`;
    const problem = server
      ? versionMismatch(OWN_VERSION, server, label)
      : new ShedError("INVALID_RESPONSE", `${label} sent a malformed ${VERSION_HEADER} header`, {
          hint: "is it a shed-server? `shed server list` shows the address the CLI uses",
        });
    if (!problem) return;
    res.resume();
    throw problem;
  }

  /** An error answer; a refused token gets the CLI's own hint, which knows how this server was added. */
  private failure(body: unknown, status: number): ShedError {
    const e = fromErrorBody(body, status);
    if (e.code !== "UNAUTHORIZED") return e;
    const how = this.endpoint.token
      ? "refused this CLI's API token"
      : "needs an API token, and this CLI has none for it";
    return new ShedError("UNAUTHORIZED", `shed-server ${this.serverName} at ${this.base} ${how}`, {
      hint: `on the server, \`shed-server token\` prints the token; then \`shed server add ${this.endpoint.host} --port ${this.endpoint.http_port} --name ${this.serverName} --token-file -\` with it on stdin (or $SHED_TOKEN)`,
    });
  }
}

function jsonHeaders(payload: string): OutgoingHttpHeaders {
  return { "content-type": "application/json", "content-length": Buffer.byteLength(payload) };
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (c: string) => {
      text += c;
    });
    res.on("end", () => resolve(text));
    res.on("error", reject);
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
