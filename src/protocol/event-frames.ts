import type { ProgressEvent } from "../core/events.js";

/**
 * A compact alternative to server-sent events for the CLI
 * (`Accept: application/x-shed-events`): hook output can be hundreds of
 * megabytes, and JSON-escaping it on the server and parsing it again in the CLI
 * cost more than moving it. Each frame is a header line, then exactly the
 * announced number of bytes:
 *
 *   O <step> <stdout|stderr> <bytes>\n<raw UTF-8 output>
 *   E <bytes>\n<one ProgressEvent as JSON>
 *   P <bytes>\n<output lines already marked with their step, ready to print>
 *
 * P frames replace O frames when the request carries `x-shed-print: lines`:
 * the server has the text in hand and marks the lines (core/output-lines.ts),
 * and the CLI only copies bytes to the terminal.
 */
export const PRINT_LINES_HEADER = "x-shed-print";

/** What a frame carries: an event, or lines ready to print. */
export type Frame = ProgressEvent | { type: "printed"; bytes: Buffer };
export const FRAMES_CONTENT_TYPE = "application/x-shed-events";

export function encodeFrame(ev: Frame): Buffer[] {
  if (ev.type === "printed") return [Buffer.from(`P ${ev.bytes.length}\n`), ev.bytes];
  if (ev.type === "output") {
    const body = Buffer.from(ev.text, "utf8");
    return [Buffer.from(`O ${ev.step} ${ev.stream} ${body.length}\n`), body];
  }
  const body = Buffer.from(JSON.stringify(ev), "utf8");
  return [Buffer.from(`E ${body.length}\n`), body];
}

/**
 * Incremental decoder: push chunks as they arrive, get whole events out. The
 * bytes of a P frame are passed on as they arrive, in as many `printed` pieces
 * as the network cut them into, without being copied; other frames are small
 * and come out whole.
 */
export class FrameDecoder {
  private header: Buffer[] = [];
  /** The frame whose body is arriving, and how many of its bytes are still to come. */
  private body: { header: string[]; parts: Buffer[]; remaining: number } | undefined;

  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    let off = 0;
    while (off < chunk.length) {
      if (!this.body) {
        const nl = chunk.indexOf(10, off);
        this.header.push(chunk.subarray(off, nl < 0 ? chunk.length : nl));
        if (nl < 0) break;
        off = nl + 1;
        const header = Buffer.concat(this.header).toString("latin1").split(" ");
        this.header = [];
        const length = Number(header.at(-1));
        if (!Number.isInteger(length) || length < 0)
          throw new Error(`malformed event frame header: ${header.join(" ")}`);
        if (FRAME_FIELDS[header[0] as string] !== header.length)
          throw new Error(`unknown event frame: ${header.join(" ")}`);
        this.body = { header, parts: [], remaining: length };
      }
      const body = this.body;
      const part = chunk.subarray(off, off + body.remaining);
      off += part.length;
      body.remaining -= part.length;
      if (body.header[0] === "P") {
        if (part.length) out.push({ type: "printed", bytes: part });
      } else body.parts.push(part);
      if (body.remaining > 0) break;
      this.body = undefined;
      if (body.header[0] !== "P") out.push(decodeFrame(body.header, Buffer.concat(body.parts)));
    }
    return out;
  }
}

/** Each kind of frame and the number of fields in its header line. */
const FRAME_FIELDS: Record<string, number> = { P: 2, O: 4, E: 2 };

function decodeFrame(header: string[], body: Buffer): Frame {
  if (header[0] === "O") {
    return {
      type: "output",
      step: header[1] as string,
      stream: header[2] === "stderr" ? "stderr" : "stdout",
      text: body.toString("utf8"),
    };
  }
  return JSON.parse(body.toString("utf8")) as ProgressEvent;
}
