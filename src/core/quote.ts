/**
 * A value quoted for an error message, cut to about `max` characters: errors
 * name what was wrong, but never echo a huge input back (or into a log) whole.
 */
export function quote(value: string, max = 100): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}

/** A value the client sent, shown bare when short (a path, a name), else quoted and cut like quote(). */
export function shown(value: string, max = 100): string {
  return value.length <= max ? value : quote(value, max);
}
