import type { ProgressEvent } from "./events.js";

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

/** Incremental decoder: push chunks as they arrive, get whole events out. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes the frame being received needs in all (header included); 0 while its header is incomplete. */
  private need = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: Frame[] = [];
    // Join chunks only once a whole frame is here: frames can be a megabyte, chunks are 64 KiB.
    while (this.size > 0 && this.size >= this.need) {
      const buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size);
      this.chunks = [buf];
      const nl = buf.indexOf(10);
      if (nl < 0) {
        this.need = this.size + 1;
        break;
      }
      const header = buf.toString("latin1", 0, nl).split(" ");
      const length = Number(header.at(-1));
      if (!Number.isInteger(length) || length < 0) throw new Error(`malformed event frame header: ${header.join(" ")}`);
      const total = nl + 1 + length;
      if (buf.length < total) {
        this.need = total;
        break;
      }
      out.push(decodeFrame(header, buf.subarray(nl + 1, total)));
      const rest = buf.subarray(total);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
      this.need = 0;
    }
    return out;
  }
}

function decodeFrame(header: string[], body: Buffer): Frame {
  if (header[0] === "P" && header.length === 2) return { type: "printed", bytes: body };
  if (header[0] === "O" && header.length === 4) {
    return {
      type: "output",
      step: header[1] as string,
      stream: header[2] === "stderr" ? "stderr" : "stdout",
      text: body.toString("utf8"),
    };
  }
  if (header[0] === "E" && header.length === 2) return JSON.parse(body.toString("utf8")) as ProgressEvent;
  throw new Error(`unknown event frame: ${header.join(" ")}`);
}
