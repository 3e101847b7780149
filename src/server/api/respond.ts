import type { ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import { type ShedError, toShedError } from "../../core/errors.js";
import type { LifecycleSink, ProgressEvent } from "../../core/events.js";
import { FRAMES_CONTENT_TYPE, PRINT_LINES_HEADER } from "../../protocol/event-frames.js";
import { type EventFormat, EventWriter } from "./event-writer.js";

/** One place turns a ShedError into the API's error body and status. */
export function errorResponse(c: Context, err: unknown): Response {
  const e: ShedError = toShedError(err);
  if (e.code === "INTERNAL") console.error("shed-server: internal error:", err);
  return c.json({ error: e.toJSON() }, e.httpStatus as 400);
}

function eventFormat(c: Context): EventFormat | undefined {
  const accept = c.req.header("accept") ?? "";
  if (accept.includes(FRAMES_CONTENT_TYPE)) return c.req.header(PRINT_LINES_HEADER) === "lines" ? "lines" : "frames";
  if (accept.includes("text/event-stream")) return "sse";
  return undefined;
}

/**
 * Runs a lifecycle operation. With `Accept: text/event-stream` (or the CLI's
 * compact `application/x-shed-events`, see core/event-frames.ts) every
 * progress event is sent as it happens (server/api/event-writer.ts), then a
 * `result` or `error` event; otherwise the caller gets one JSON document when
 * it is over. Events are written straight to Node's response: hook output can
 * be hundreds of megabytes.
 */
export async function runOperation<T>(
  c: Context,
  op: (emit: LifecycleSink) => Promise<T>,
  toResult: (value: T) => ProgressEvent | undefined,
  status: 200 | 201 = 200,
): Promise<Response> {
  const format = eventFormat(c);
  if (!format) {
    try {
      const ev = toResult(await op(() => {}));
      return ev?.type === "result" ? c.json(ev.shed, status) : c.body(null, 204);
    } catch (err) {
      return errorResponse(c, err);
    }
  }
  const res = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!res) throw new Error("server-sent events need the Node HTTP server");
  res.writeHead(200, {
    "content-type": format === "sse" ? "text/event-stream" : FRAMES_CONTENT_TYPE,
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  const writer = new EventWriter(res, format);
  try {
    const ev = toResult(await op((e) => writer.send(e)));
    writer.send(ev ?? { type: "step_end", step: "done", outcome: "succeeded", duration_ms: 0 });
  } catch (err) {
    const e = toShedError(err);
    if (e.code === "INTERNAL") console.error("shed-server: internal error:", err);
    writer.send({ type: "error", error: e.toJSON() });
  }
  writer.close();
  res.end();
  return RESPONSE_ALREADY_SENT;
}
