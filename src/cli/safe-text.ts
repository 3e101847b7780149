/**
 * Text that came from a server (names, messages, hints, warnings, a shed's
 * fields) is untrusted when the CLI prints it: an escape sequence can recolour
 * or clear the terminal, retitle the window, rewrite what is on screen with a
 * carriage return, or on some terminals answer back as typed input; a line
 * break inside a one-line field forges lines of output. Every such character
 * is shown as an escape (`\x1b`, `\n`, `\u202e`) instead, so the user sees that
 * it was there without the terminal acting on it.
 *
 * Not escaped here: the output of hooks, git and `shed exec`, which is the
 * user's own programs' output and is copied to the terminal as raw bytes, as
 * `ssh` and `docker exec` do (colours and progress bars need that).
 */

// C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals), the line and
// paragraph separators, and the invisible bidirectional overrides and isolates ("Trojan Source").
// biome-ignore lint/suspicious/noControlCharactersInRegex: these characters are what is escaped
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the same set, less the line break and tab
const UNSAFE_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** A one-line field (a name, an image, a table cell): every control character escaped, line breaks too. */
export function safeLine(value: unknown): string {
  return String(value ?? "").replace(UNSAFE, escapeChar);
}

/** Text that may span lines (a message, a hint): line breaks and tabs kept, every other control character escaped. */
export function safeText(value: unknown): string {
  return String(value ?? "").replace(UNSAFE_IN_TEXT, escapeChar);
}
