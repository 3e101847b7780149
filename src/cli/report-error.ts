import { type ShedError, toShedError } from "../core/errors.js";
import { safeText } from "./safe-text.js";

/** A command's failure, the same from the full CLI (main.ts) and the quick path (quick.ts). */
export function reportError(err: unknown, json: boolean): void {
  const e = toShedError(err);
  if (json) process.stdout.write(`${JSON.stringify({ error: e.toJSON() }, null, 2)}\n`);
  process.stderr.write(formatError(e));
  process.exitCode = 1;
}

/** An error for the terminal: its message and hint may come from a server, so control characters are escaped. */
export function formatError(e: ShedError): string {
  return `error: ${safeText(e.message)}${e.hint ? `\nhint: ${safeText(e.hint)}` : ""}\n`;
}
