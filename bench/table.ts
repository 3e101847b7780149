// The benchmark's rows, the issue's targets beside them, and the table printed and put in README.md.
import { median } from "./harness.js";

export type Unit = "ms" | "MB" | "MB/s";
export type System = "shed" | "devcontainer" | "docker";

/** A target on the ratio Shed / peer (or on Shed's own figure when `vs` is "value"). */
export interface Target {
  vs: "devcontainer" | "docker" | "value";
  max?: number;
  min?: number;
  /** Where it comes from when not from issue 12 (an earlier benchmark's target). */
  source?: string;
}

export interface Row {
  id: string;
  what: string;
  unit: Unit;
  shed: number;
  devcontainer?: number;
  docker?: number;
  runs: number;
  targets: Target[];
}

export interface Verdict {
  target: Target;
  ratio: number;
  met: boolean;
}

/** Medians of alternating samples, one list per system. */
export type Samples = Partial<Record<System, number[]>>;

export function rowOf(
  id: string,
  what: string,
  samples: Samples,
  targets: Target[] = [],
  unit: Unit = "ms",
): Row & { samples: Samples } {
  const shed = samples.shed ?? [];
  if (shed.length === 0) throw new Error(`row ${id} has no Shed samples`);
  const row: Row & { samples: Samples } = { id, what, unit, shed: median(shed), runs: shed.length, targets, samples };
  if (samples.devcontainer?.length) row.devcontainer = median(samples.devcontainer);
  if (samples.docker?.length) row.docker = median(samples.docker);
  return row;
}

export const ratio = (row: Row, vs: "devcontainer" | "docker"): number | undefined => {
  const other = row[vs];
  return other === undefined ? undefined : row.shed / other;
};

export function verdicts(row: Row): Verdict[] {
  return row.targets.map((target) => {
    const r = target.vs === "value" ? row.shed : (ratio(row, target.vs) ?? Number.NaN);
    const met = (target.max === undefined || r <= target.max) && (target.min === undefined || r >= target.min);
    return { target, ratio: r, met };
  });
}

function fmtValue(v: number | undefined, unit: Unit): string {
  if (v === undefined) return "";
  if (unit === "ms") return `${v < 100 ? v.toFixed(1) : v.toFixed(0)} ms`;
  return `${v.toFixed(0)} ${unit}`;
}

const fmtRatio = (r: number | undefined) => (r === undefined ? "" : `${r.toFixed(2)}x`);

function fmtTarget(v: Verdict, unit: Unit): string {
  const { target } = v;
  const bound = target.max !== undefined ? `at most ${target.max}` : `at least ${target.min}`;
  const what =
    target.vs === "value"
      ? `${bound.replace("at most", "under")} ${unit}`
      : `${bound}x ${target.vs === "docker" ? "Docker" : "devcontainer"}`;
  return `${what}${target.source ? ` (${target.source})` : ""}: ${v.met ? "met" : "NOT MET"}`;
}

export function markdownTable(rows: Row[], devcontainerVersion: string): string {
  const head = [
    "what (medians)",
    "Shed",
    `devcontainer CLI ${devcontainerVersion}`,
    "Docker / floor",
    "Shed / devcontainer",
    "Shed / Docker",
    "target",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => " --- ").join("|")}|`];
  for (const row of rows) {
    const cells = [
      `${row.what}${row.runs > 1 ? ` (${row.runs} runs)` : ""}`,
      fmtValue(row.shed, row.unit),
      fmtValue(row.devcontainer, row.unit),
      fmtValue(row.docker, row.unit),
      fmtRatio(ratio(row, "devcontainer")),
      fmtRatio(ratio(row, "docker")),
      verdicts(row)
        .map((v) => fmtTarget(v, row.unit))
        .join("; "),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
