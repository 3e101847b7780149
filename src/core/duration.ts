import { ShedError } from "./errors.js";
import { quote } from "./quote.js";

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * The longest duration Shed accepts (hook `timeout`, `create --timeout`,
 * `stop_timeout`): 7 days. Node's timers hold at most 2^31-1 ms (about 24.8
 * days) and fire after 1 ms beyond that, so a larger value would end a hook at
 * once instead of never; every limit stays well below it.
 */
export const MAX_DURATION_MS = 7 * UNIT_MS.d;
export const MAX_DURATION_TEXT = "7d";

/** Parses "90s", "30m", "1.5h", "250ms", "2d" into milliseconds; undefined when malformed or above the maximum. */
export function tryParseDuration(text: string): number | undefined {
  const ms = parseAnyDuration(text);
  return ms !== undefined && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** What is wrong with a duration, for error messages; undefined when it is a valid one. */
export function durationProblem(text: string): string | undefined {
  const ms = parseAnyDuration(text);
  if (ms === undefined) return "not a duration; write a number with a unit: 250ms, 90s, 30m, 2h or 1d";
  if (ms > MAX_DURATION_MS) return `longer than the maximum of ${MAX_DURATION_TEXT} (168h)`;
  return undefined;
}

export function parseDuration(text: string, what: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) {
    const tooLong = parseAnyDuration(text) !== undefined;
    throw new ShedError(
      "INVALID_REQUEST",
      `${what}: ${quote(text)} is ${tooLong ? `longer than the maximum of ${MAX_DURATION_TEXT} (168h)` : "not a duration"}`,
      { hint: `write a number with a unit: 250ms, 90s, 30m, 2h or 1d; at most ${MAX_DURATION_TEXT}` },
    );
  }
  return ms;
}

function parseAnyDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return undefined;
  const value = Number(m[1]);
  const unit = m[2] as keyof typeof UNIT_MS;
  const ms = Math.round(value * UNIT_MS[unit]);
  return Number.isFinite(ms) ? ms : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${m}m${s}s`;
}
