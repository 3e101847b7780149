import { safeText } from "./safe-text.js";

/** Prints a command's result: JSON on stdout with --json, else the human text. */
export function printResult(json: boolean, value: unknown, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else {
    // Human text shows fields a server sent: its control characters are shown escaped, never acted on.
    const text = safeText(human());
    if (text) process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }
}
