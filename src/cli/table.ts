import { safeLine } from "./safe-text.js";

/** A plain aligned text table (no borders), like `docker ps`; cells are one line each, control characters escaped. */
export function table(headers: string[], raw: string[][]): string {
  const rows = raw.map((r) => r.map(safeLine));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}
