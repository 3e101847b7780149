import { request as httpRequest, type IncomingMessage } from "node:http";
import { fromErrorBody, ShedError } from "../core/errors.js";
import { FRAMES_CONTENT_TYPE, FrameDecoder, PRINT_LINES_HEADER } from "../core/event-frames.js";
import type { ProgressEvent, ProgressSink } from "../core/events.js";
import type { Shed } from "../core/types.js";
import type { ServerEntry } from "./client-config.js";
import { checkEvent, checkResponse } from "./validate-response.js";

/** Talks to one shed-server's HTTP API. Lifecycle calls stream progress (SSE). */
export class ApiClient {
  readonly base: string;

  constructor(
    readonly serverName: string,
    entry: Pick<ServerEntry, "host" | "http_port">,
  ) {
    const host = entry.host.includes(":") && !entry.host.startsWith("[") ? `[${entry.host}]` : entry.host;
    this.base = `http://${host}:${entry.http_port}`;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = text ? safeJson(text) : undefined;
    if (!res.ok) throw fromErrorBody(parsed, res.status);
    // What a server sends is untrusted: sheds are checked before any command uses them.
    return checkResponse(this.serverName, method, path, parsed) as T;
  }

  async upload(path: string, body: ReadableStream<Uint8Array>): Promise<{ id: string }> {
    const res = await this.fetch(path, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body,
      duplex: "half",
    } as RequestInit);
    const parsed = safeJson(await res.text());
    if (!res.ok) throw fromErrorBody(parsed, res.status);
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
    const res = await this.request(method, path, body, onPrinted !== undefined);
    const type = String(res.headers["content-type"] ?? "");
    if ((res.statusCode ?? 500) >= 400 || !type.includes(FRAMES_CONTENT_TYPE)) {
      const text = await readAll(res);
      const parsed = text ? safeJson(text) : undefined;
      if ((res.statusCode ?? 500) >= 400) throw fromErrorBody(parsed, res.statusCode ?? 500);
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

  private request(method: string, path: string, body: unknown, printLines: boolean): Promise<IncomingMessage> {
    const url = new URL(`${this.base}${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname.replace(/^\[|\]$/g, ""),
          port: url.port,
          path: url.pathname + url.search,
          method,
          headers: {
            accept: FRAMES_CONTENT_TYPE,
            ...(printLines ? { [PRINT_LINES_HEADER]: "lines" } : {}),
            ...(payload === undefined
              ? {}
              : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
          },
        },
        resolve,
      );
      req.on("error", (err: NodeJS.ErrnoException) => reject(this.unreachable(err.code ?? err.message)));
      req.end(payload);
    });
  }

  private unreachable(cause: string): ShedError {
    return new ShedError(
      "SERVER_UNREACHABLE",
      `cannot reach shed-server ${this.serverName} at ${this.base} (${cause})`,
      {
        hint: "is shed-server running there? `shed server list` shows the address the CLI uses",
      },
    );
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw this.unreachable(cause?.code ?? cause?.message ?? (err as Error).message);
    }
  }
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
