/**
 * Turns a step's output stream into whole lines marked with the step, as people
 * see them: `  [install] text`. A line that is not finished yet is held until
 * its newline (or the end of the step). Progress meters rewrite a line with \r;
 * only where each line ended up is shown. Used by the CLI, and by the server
 * when the CLI asks for output ready to print (hook output can be huge, and the
 * server has the text in hand already).
 */
export class LinePrefixer {
  private readonly partial = new Map<string, string>();

  static label(step: string): string {
    return `  [${step.replace(/_hook$/, "")}] `;
  }

  /** The complete lines of `text` (with what was held before), marked; "" when none completed. */
  push(step: string, text: string): string {
    const all = (this.partial.get(step) ?? "") + text;
    const cut = all.lastIndexOf("\n");
    this.partial.set(step, all.slice(cut + 1));
    if (cut < 0) return "";
    const prefix = LinePrefixer.label(step);
    const body = all.slice(0, cut);
    // One string per chunk, not per line: the common case is a single native replace.
    if (!body.includes("\r")) return `${prefix}${body.replaceAll("\n", `\n${prefix}`)}\n`;
    let block = "";
    for (const l of body.split("\n")) {
      const shown = l.slice(l.lastIndexOf("\r") + 1);
      if (shown.trim() !== "") block += `${prefix}${shown}\n`;
    }
    return block;
  }

  /** The held, unfinished line of a step that ended, marked; "" when none. */
  end(step: string): string {
    const rest = this.partial.get(step) ?? "";
    this.partial.delete(step);
    const shown = rest.slice(rest.lastIndexOf("\r") + 1);
    return shown.trim() ? `${LinePrefixer.label(step)}${shown}\n` : "";
  }
}
