import { z } from "zod";

const UNIT_BYTES = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 } as const;
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)$/;

/** Parses a size, "512KiB", "64MiB", "2GiB" or a number of bytes, into bytes; undefined when malformed. */
export function tryParseSize(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = SIZE_RE.exec(value.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNIT_BYTES[m[2] as keyof typeof UNIT_BYTES]);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A size field of a config file: a byte count or a number with a binary unit, at least `min` bytes. */
export function sizeField(min: number) {
  return z.union([z.number(), z.string()]).superRefine((v, ctx) => {
    const bytes = tryParseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: "custom", message: "not a size; write a number of bytes, or e.g. 512KiB, 64MiB, 2GiB" });
    } else if (bytes < min) {
      ctx.addIssue({ code: "custom", message: `too small: at least ${formatSize(min)}` });
    }
  });
}

export function formatSize(bytes: number): string {
  for (const unit of ["TiB", "GiB", "MiB", "KiB"] as const) {
    const n = bytes / UNIT_BYTES[unit];
    if (n >= 1) return `${Math.round(n * 10) / 10} ${unit}`;
  }
  return `${bytes} B`;
}
