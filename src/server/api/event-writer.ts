import { StringDecoder } from "node:string_decoder";
import type { LifecycleEvent, ProgressEvent } from "../../core/events.js";
import { LinePrefixer } from "../../core/output-lines.js";
import { encodeFrame, type Frame } from "../../protocol/event-frames.js";

/** How a client asked for progress: server-sent events, or the CLI's frames (with lines ready to print, or not). */
export type EventFormat = "sse" | "frames" | "lines";

/** Output is gathered into one write until this much has come or this much time has passed. */
const OUTPUT_FLUSH_BYTES = 1 << 20;
const OUTPUT_FLUSH_MS = 20;
const STREAMS = ["stdout", "stderr"] as const;
const decoderKey = (step: string, stream: string) => `${step}\0${stream}`;
/**
 * A client that reads slower than a hook prints must not grow the server's
 * memory without bound: past this much unsent data, output is left out of the
 * live stream (the hook's log file keeps all of it) and a note says how much.
 */
export const OUTPUT_BACKLOG_LIMIT = 64 << 20;

/** The part of Node's response the writer needs. */
export interface ResponseSink {
  write(chunk: Buffer | string): unknown;
  cork(): void;
  uncork(): void;
  readonly writableLength: number;
}

/**
 * Writes a lifecycle's events to one client in its format. Output stays bytes
 * on the way: for `lines` it is marked as it arrives and sent as P frames; for
 * the text formats it is decoded (a character split between two chunks is
 * kept whole) only when it is sent. Consecutive output is gathered for at
 * most 20 ms, so it stays live without a write per chunk.
 */
export class EventWriter {
  /** Output gathered for the next write: `size` bytes to send, `source` bytes of the guest's output. */
  private pending:
    | { step: string; stream: "stdout" | "stderr"; parts: Buffer[]; size: number; source: number }
    | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly skipped = new Map<string, number>();
  private readonly lines = new LinePrefixer();
  private readonly decoders = new Map<string, StringDecoder>();

  constructor(
    private readonly out: ResponseSink,
    private readonly format: EventFormat,
  ) {}

  send(ev: LifecycleEvent | ProgressEvent): void {
    if (ev.type === "output_bytes") {
      const bytes = this.format === "lines" ? this.lines.push(ev.step, ev.bytes) : ev.bytes;
      this.gather(ev.step, ev.stream, bytes, ev.bytes.length);
      return;
    }
    if (ev.type === "step_end" && this.format === "lines") this.gather(ev.step, "stdout", this.lines.end(ev.step), 0);
    this.flush();
    if (ev.type === "step_end") {
      if (this.format !== "lines")
        for (const stream of STREAMS) this.sendText(ev.step, stream, this.endDecoder(ev.step, stream));
      this.noteSkipped(ev.step);
    }
    this.write(ev);
  }

  /** Sends what is gathered; call before ending the response. */
  close(): void {
    this.flush();
  }

  private gather(step: string, stream: "stdout" | "stderr", bytes: Buffer, source: number): void {
    const p = this.pending;
    // In lines mode every stream of a step is one P frame: the lines are already marked.
    if (p && p.step === step && (p.stream === stream || this.format === "lines")) {
      p.parts.push(bytes);
      p.size += bytes.length;
      p.source += source;
    } else {
      this.flush();
      this.pending = { step, stream, parts: [bytes], size: bytes.length, source };
    }
    if ((this.pending?.size ?? 0) >= OUTPUT_FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), OUTPUT_FLUSH_MS);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    if (this.out.writableLength > OUTPUT_BACKLOG_LIMIT) {
      this.skipped.set(p.step, (this.skipped.get(p.step) ?? 0) + p.source);
      return;
    }
    this.noteSkipped(p.step);
    if (p.size === 0) return;
    if (this.format === "lines") {
      this.out.cork();
      this.out.write(`P ${p.size}\n`);
      for (const part of p.parts) this.out.write(part);
      this.out.uncork();
      return;
    }
    const decoder = this.decoder(p.step, p.stream);
    this.sendText(p.step, p.stream, p.parts.map((b) => decoder.write(b)).join(""));
  }

  private sendText(step: string, stream: "stdout" | "stderr", text: string): void {
    if (text) this.write({ type: "output", step, stream, text });
  }

  private decoder(step: string, stream: string): StringDecoder {
    const key = decoderKey(step, stream);
    let d = this.decoders.get(key);
    if (!d) {
      d = new StringDecoder("utf8");
      this.decoders.set(key, d);
    }
    return d;
  }

  /** What a step's decoder still holds (an incomplete character at the very end), as text. */
  private endDecoder(step: string, stream: string): string {
    const key = decoderKey(step, stream);
    const rest = this.decoders.get(key)?.end() ?? "";
    this.decoders.delete(key);
    return rest;
  }

  private noteSkipped(step: string): void {
    const n = this.skipped.get(step);
    if (!n) return;
    this.skipped.delete(step);
    const note = `[shed: ${n} bytes of output not shown here (the client read too slowly); the log has all of it]`;
    if (this.format !== "lines") {
      this.write({ type: "output", step, stream: "stderr", text: `\n${note}\n` });
      return;
    }
    // The line that was cut short ends here; the note is a line of its own.
    const marked = Buffer.from(`${LinePrefixer.label(step)}${note}\n`);
    this.write({ type: "printed", bytes: Buffer.concat([this.lines.end(step), marked]) });
  }

  private write(frame: Frame): void {
    if (this.format === "sse") {
      this.out.write(`event: ${frame.type}\ndata: ${JSON.stringify(frame)}\n\n`);
      return;
    }
    this.out.cork();
    for (const part of encodeFrame(frame)) this.out.write(part);
    this.out.uncork();
  }
}
