/**
 * Turns a step's output stream into whole lines marked with the step, as people
 * see them: `  [install] text`. A line that is not finished yet is held until
 * its newline (or the end of the step). Progress meters rewrite a line with \r;
 * only where each line ended up is shown. The server marks lines for the CLI
 * (hook output can be hundreds of megabytes, and the server has it in hand);
 * the CLI uses the same class for output it prints itself.
 *
 * It works on bytes. They are read as latin1, one character per byte, so UTF-8
 * (or any other encoding) passes through unchanged, a character split across
 * two chunks is never damaged, and \n and \r are found as themselves: no UTF-8
 * sequence contains those bytes.
 */
export class LinePrefixer {
  private readonly partial = new Map<string, Buffer[]>();

  static label(step: string): string {
    return `  [${step.replace(/_hook$/, "")}] `;
  }

  /** The complete lines of `bytes` (after what was held before), marked; empty when none completed. */
  push(step: string, bytes: Buffer): Buffer {
    const held = this.partial.get(step) ?? [];
    const cut = bytes.lastIndexOf(NL);
    if (cut < 0) {
      // Of an unfinished line only what follows its last \r will be shown.
      const cr = bytes.lastIndexOf(CR);
      const kept = cr < 0 ? [...held, Buffer.from(bytes)] : [Buffer.from(bytes.subarray(cr))];
      this.partial.set(step, kept);
      // Output without line ends (a binary file, one endless line) is shown in pieces, not held without bound.
      return sizeOf(kept) > MAX_HELD ? this.end(step) : EMPTY;
    }
    if (cut + 1 < bytes.length) this.partial.set(step, [Buffer.from(bytes.subarray(cut + 1))]);
    else this.partial.delete(step);
    const prefix = LinePrefixer.label(step);
    let head = held.map((b) => b.toString("latin1")).join("");
    // Marked a window at a time: strings past V8's young generation (about 128 KiB) are several times slower.
    const marked: Buffer[] = [];
    for (let from = 0; from < cut; ) {
      const end = from + WINDOW >= cut ? cut : bytes.lastIndexOf(NL, from + WINDOW);
      const to = end > from ? end : cut;
      marked.push(Buffer.from(markLines(prefix, head + bytes.toString("latin1", from, to)), "latin1"));
      head = "";
      from = to + 1;
    }
    if (marked.length === 0) marked.push(Buffer.from(markLines(prefix, head), "latin1"));
    return marked.length === 1 ? (marked[0] as Buffer) : Buffer.concat(marked);
  }

  /** The held, unfinished line of a step that ended, marked; empty when none. */
  end(step: string): Buffer {
    const rest = Buffer.concat(this.partial.get(step) ?? []).toString("latin1");
    this.partial.delete(step);
    const shown = rest.slice(rest.lastIndexOf("\r") + 1);
    return shown.trim() ? Buffer.from(`${LinePrefixer.label(step)}${shown}\n`, "latin1") : EMPTY;
  }
}

const NL = 10;
const CR = 13;
const MAX_HELD = 64 << 10;
const WINDOW = 64 << 10;
const sizeOf = (parts: Buffer[]) => parts.reduce((n, b) => n + b.length, 0);
const EMPTY = Buffer.alloc(0);

/** `body` is whole lines without the last newline. */
function markLines(prefix: string, body: string): string {
  // One native replace per chunk, not a loop per line: the common case, and the fast one.
  if (!body.includes("\r")) return `${prefix}${body.replaceAll("\n", `\n${prefix}`)}\n`;
  let block = "";
  for (const l of body.split("\n")) {
    const shown = l.slice(l.lastIndexOf("\r") + 1);
    if (shown.trim() !== "") block += `${prefix}${shown}\n`;
  }
  return block;
}
