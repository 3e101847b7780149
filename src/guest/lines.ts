import type { Readable } from "node:stream";

/** Calls `onText` with the stream's text as it arrives, flushing on newlines so progress stays live. */
export function forwardText(stream: Readable, onText: (text: string) => void): Promise<void> {
  return new Promise((resolve) => {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => onText(chunk));
    stream.on("end", resolve);
    stream.on("close", resolve);
    stream.on("error", () => resolve());
  });
}

/** Keeps the last `max` lines of a text stream, for error messages. */
export class TailBuffer {
  private text = "";
  constructor(private readonly maxChars = 4000) {}
  push(chunk: string): void {
    this.text = (this.text + chunk).slice(-this.maxChars);
  }
  lines(n: number): string[] {
    return this.text
      .split(/\r?\n|\r/)
      .map((l) => l.trimEnd())
      .filter((l) => l.length > 0)
      .slice(-n);
  }
}
