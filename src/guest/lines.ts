import type { Readable } from "node:stream";

/** Calls `onText` with the stream's text as it arrives (a character split between chunks is kept whole). */
export function forwardText(stream: Readable, onText: (text: string) => void): Promise<void> {
  stream.setEncoding("utf8");
  return forward(stream, onText);
}

/** Calls `onBytes` with the stream's chunks as they arrive, undecoded: for output that can be hundreds of megabytes. */
export function forwardBytes(stream: Readable, onBytes: (bytes: Buffer) => void): Promise<void> {
  return forward(stream, onBytes);
}

function forward<T>(stream: Readable, on: (chunk: T) => void): Promise<void> {
  return new Promise((resolve) => {
    stream.on("data", on);
    stream.on("end", resolve);
    stream.on("close", resolve);
    stream.on("error", () => resolve());
  });
}

/** Keeps the end of a stream's output (the last `maxBytes`), for error messages. */
export class TailBuffer {
  private tail: Buffer = Buffer.alloc(0);
  constructor(private readonly maxBytes = 4000) {}

  push(chunk: string | Buffer): void {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    // Only the end of a big chunk can be in the tail: copy that much, not the chunk.
    const end = bytes.subarray(-this.maxBytes);
    this.tail = Buffer.concat([this.tail, end]).subarray(-this.maxBytes);
  }

  /** The last `n` non-empty lines (a character cut at the start of the kept bytes shows as U+FFFD). */
  lines(n: number): string[] {
    return this.tail
      .toString("utf8")
      .split(/\r?\n|\r/)
      .map((l) => l.trimEnd())
      .filter((l) => l.length > 0)
      .slice(-n);
  }
}
