import { fromErrorBody, ShedError } from "../core/errors.js";
import type { ProgressEvent, ProgressSink } from "../core/events.js";
import type { ServerEntry } from "./client-config.js";

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
    return parsed as T;
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

  /** Runs a lifecycle operation, passing each progress event to `onEvent`; resolves with the final event. */
  async operation(
    method: string,
    path: string,
    body: unknown,
    onEvent: ProgressSink,
  ): Promise<ProgressEvent | undefined> {
    const res = await this.fetch(path, {
      method,
      headers: {
        accept: "text/event-stream",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok || !(res.headers.get("content-type") ?? "").includes("text/event-stream")) {
      const parsed = safeJson(await res.text());
      if (!res.ok) throw fromErrorBody(parsed, res.status);
      return undefined;
    }
    let last: ProgressEvent | undefined;
    for await (const ev of readEvents(res)) {
      if (ev.type === "error")
        throw new ShedError(ev.error.code, ev.error.message, {
          hint: ev.error.hint,
          details: ev.error.details,
        });
      onEvent(ev);
      last = ev;
    }
    return last;
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, init);
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ShedError(
        "SERVER_UNREACHABLE",
        `cannot reach shed-server ${this.serverName} at ${this.base} (${cause})`,
        {
          hint: "is shed-server running there? `shed server list` shows the address the CLI uses",
        },
      );
    }
  }
}

async function* readEvents(res: Response): AsyncGenerator<ProgressEvent> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let idx = buf.indexOf("\n\n");
    while (idx >= 0) {
      const block = buf.slice(0, idx);
      buf = buf.slice(idx + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) yield JSON.parse(data) as ProgressEvent;
      idx = buf.indexOf("\n\n");
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
