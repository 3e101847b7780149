import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { type ShedError, toShedError } from "../../core/errors.js";
import type { ProgressEvent, ProgressSink } from "../../core/events.js";

/** One place turns a ShedError into the API's error body and status. */
export function errorResponse(c: Context, err: unknown): Response {
  const e: ShedError = toShedError(err);
  if (e.code === "INTERNAL") console.error("shed-server: internal error:", err);
  return c.json({ error: e.toJSON() }, e.httpStatus as 400);
}

export function wantsEvents(c: Context): boolean {
  return (c.req.header("accept") ?? "").includes("text/event-stream");
}

/**
 * Runs a lifecycle operation. With `Accept: text/event-stream` every progress
 * event is sent as it happens, then a `result` or `error` event; otherwise the
 * caller gets one JSON document when it is over.
 */
export function runOperation<T>(
  c: Context,
  op: (emit: ProgressSink) => Promise<T>,
  toResult: (value: T) => ProgressEvent | undefined,
  status: 200 | 201 = 200,
): Response | Promise<Response> {
  if (!wantsEvents(c)) {
    return op(() => {})
      .then((value) => {
        const ev = toResult(value);
        return ev?.type === "result" ? c.json(ev.shed, status) : c.body(null, 204);
      })
      .catch((err) => errorResponse(c, err));
  }
  return streamSSE(c, async (stream) => {
    // Events are queued synchronously and written in order.
    let chain = Promise.resolve();
    const send = (ev: ProgressEvent) => {
      chain = chain.then(() => stream.writeSSE({ event: ev.type, data: JSON.stringify(ev) })).catch(() => {});
    };
    try {
      const value = await op(send);
      const ev = toResult(value);
      send(ev ?? { type: "step_end", step: "done", outcome: "succeeded", duration_ms: 0 });
    } catch (err) {
      const e = toShedError(err);
      if (e.code === "INTERNAL") console.error("shed-server: internal error:", err);
      send({ type: "error", error: e.toJSON() });
    }
    await chain;
  });
}
