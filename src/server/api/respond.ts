import type { ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import { type ShedError, toShedError } from "../../core/errors.js";
import { encodeFrame, FRAMES_CONTENT_TYPE, type Frame, PRINT_LINES_HEADER } from "../../core/event-frames.js";
import type { ProgressEvent, ProgressSink } from "../../core/events.js";
import { LinePrefixer } from "../../core/output-lines.js";

/** One place turns a ShedError into the API's error body and status. */
export function errorResponse(c: Context, err: unknown): Response {
  const e: ShedError = toShedError(err);
  if (e.code === "INTERNAL") console.error("shed-server: internal error:", err);
  return c.json({ error: e.toJSON() }, e.httpStatus as 400);
}

type EventFormat = "sse" | "frames";

function eventFormat(c: Context): EventFormat | undefined {
  const accept = c.req.header("accept") ?? "";
  if (accept.includes(FRAMES_CONTENT_TYPE)) return "frames";
  if (accept.includes("text/event-stream")) return "sse";
  return undefined;
}

/** Output is merged into one event per step and stream until this much text or this much time has gathered. */
const OUTPUT_FLUSH_BYTES = 1 << 20;
const OUTPUT_FLUSH_MS = 20;
/**
 * A client that reads slower than a hook prints must not grow the server's
 * memory without bound: past this much unsent data, output is left out of the
 * live stream (the hook's log file keeps all of it) and a note says how much.
 */
export const OUTPUT_BACKLOG_LIMIT = 64 << 20;

/**
 * Runs a lifecycle operation. With `Accept: text/event-stream` (or the CLI's
 * compact `application/x-shed-events`, see core/event-frames.ts) every
 * progress event is sent as it happens, then a `result` or `error` event;
 * otherwise the caller gets one JSON document when it is over. Events are
 * written straight to Node's response (hook output can be hundreds of
 * megabytes), and consecutive output is coalesced for at most 20 ms so it
 * stays live.
 */
export async function runOperation<T>(
  c: Context,
  op: (emit: ProgressSink) => Promise<T>,
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
    "content-type": format === "frames" ? FRAMES_CONTENT_TYPE : "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  // The CLI can ask for output lines ready to print (see core/event-frames.ts).
  const lines = format === "frames" && c.req.header(PRINT_LINES_HEADER) === "lines" ? new LinePrefixer() : undefined;
  const writeFrame = (frame: Frame) => {
    for (const part of encodeFrame(frame)) res.write(part);
  };
  const write = (ev: ProgressEvent) => {
    if (format === "sse") {
      res.write(`event: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`);
      return;
    }
    if (!lines) return writeFrame(ev);
    const printed =
      ev.type === "output" ? lines.push(ev.step, ev.text) : ev.type === "step_end" ? lines.end(ev.step) : "";
    if (printed) writeFrame({ type: "printed", bytes: Buffer.from(printed, "utf8") });
    if (ev.type !== "output") writeFrame(ev);
  };
  let pending: Extract<ProgressEvent, { type: "output" }> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const skipped = new Map<string, number>();
  const noteSkipped = (step: string) => {
    const n = skipped.get(step);
    if (!n) return;
    skipped.delete(step);
    write({
      type: "output",
      step,
      stream: "stderr",
      text: `\n[shed: ${n} bytes of output not shown here (the client read too slowly); the log has all of it]\n`,
    });
  };
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const out = pending;
    pending = undefined;
    if (!out) return;
    if (res.writableLength > OUTPUT_BACKLOG_LIMIT) {
      skipped.set(out.step, (skipped.get(out.step) ?? 0) + Buffer.byteLength(out.text));
      return;
    }
    noteSkipped(out.step);
    write(out);
  };
  const send: ProgressSink = (ev) => {
    if (ev.type === "output") {
      if (pending && pending.step === ev.step && pending.stream === ev.stream) pending.text += ev.text;
      else {
        flush();
        pending = { ...ev };
      }
      if (pending.text.length >= OUTPUT_FLUSH_BYTES) flush();
      else timer ??= setTimeout(flush, OUTPUT_FLUSH_MS);
      return;
    }
    flush();
    if (ev.type === "step_end") noteSkipped(ev.step);
    write(ev);
  };
  try {
    const ev = toResult(await op(send));
    send(ev ?? { type: "step_end", step: "done", outcome: "succeeded", duration_ms: 0 });
  } catch (err) {
    const e = toShedError(err);
    if (e.code === "INTERNAL") console.error("shed-server: internal error:", err);
    send({ type: "error", error: e.toJSON() });
  }
  flush();
  res.end();
  return RESPONSE_ALREADY_SENT;
}
