/**
 * What `shed-server doctor` and `shed doctor` print: one line per check, a hint under each that
 * is not ok. Shared by both programs (core), so the two doctors read and script the same way.
 *
 * - ok: nothing to do;
 * - warn: works, but worth knowing (QEMU without KVM is slow; a data_dir others can read);
 * - fail: what the check is for cannot work; the doctor exits non-zero.
 */
export type CheckStatus = "ok" | "warn" | "fail";

export interface DoctorCheck {
  /** What was checked, short and stable: `engine`, `port http_port`, `server dev: token`. */
  check: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** How to fix it; only when the status is not ok. */
  hint?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
}

export function report(checks: DoctorCheck[]): DoctorReport {
  return { ok: checks.every((c) => c.status !== "fail"), checks };
}

const LABEL: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL" };

/** The human form: `ok   engine: Docker 20.10 (API 1.41)`, and `     hint: ...` under a warn or fail. */
export function renderReport(r: DoctorReport): string {
  const lines: string[] = [];
  for (const c of r.checks) {
    lines.push(`${LABEL[c.status]} ${c.check}: ${c.detail}`);
    if (c.hint && c.status !== "ok") lines.push(`     hint: ${c.hint}`);
  }
  const failed = r.checks.filter((c) => c.status === "fail").length;
  const warned = r.checks.filter((c) => c.status === "warn").length;
  lines.push(
    failed === 0
      ? `all ${r.checks.length} checks passed${warned ? ` (${warned} with a warning)` : ""}`
      : `${failed} of ${r.checks.length} checks failed`,
  );
  return `${lines.join("\n")}\n`;
}
