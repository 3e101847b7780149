import type { PathReport, SyncReport } from "./run.js";

/** Human text of a sync: paths and counts only, never file contents. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GB`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function describeSelection(r: SyncReport): string {
  return r.profile !== undefined
    ? `profile ${r.profile}`
    : `${plural(r.features.length, "feature")} ${r.features.join(", ")}`;
}

/** One line: what moved (files and symlinks; directories are not counted). */
export function summarize(r: SyncReport): string {
  const same = r.paths.reduce((n, p) => n + p.unchanged.filter((u) => !u.endsWith("/")).length, 0);
  if (r.dry_run) {
    const w = r.would_send ?? { files: 0, dirs: 0, links: 0, bytes: 0 };
    return `${plural(w.files + w.links, "file")} (${formatBytes(w.bytes)}) to send, ${same} up to date`;
  }
  return `${plural(r.files_sent + r.links_sent, "file")} (${formatBytes(r.bytes_sent)}) sent, ${same} up to date`;
}

const LABEL: Record<PathReport["status"], string> = {
  synced: "sent",
  up_to_date: "up to date",
  would_sync: "to send",
  missing: "missing",
  failed: "failed",
};

/** One line per path (and, in a dry run, per entry), then the postSync commands. */
export function pathLines(r: SyncReport): string[] {
  const lines: string[] = [];
  for (const p of r.paths) {
    const dirs = p.changed.filter((c) => c.endsWith("/")).length;
    const files = p.changed.length - dirs;
    const detail =
      p.status === "missing"
        ? "source not found"
        : p.status === "up_to_date"
          ? plural(p.files, "file")
          : [
              `${plural(files, "file")}${p.bytes ? `, ${formatBytes(p.bytes)}` : ""}`,
              ...(dirs ? [plural(dirs, "directory", "directories")] : []),
              ...(p.unchanged.length ? [`${p.unchanged.length} up to date`] : []),
            ].join(", ");
    lines.push(`${LABEL[p.status].padEnd(10)}  ${p.source} -> ${p.target} (${detail})`);
    if (r.dry_run) {
      for (const c of p.changed) lines.push(`              would copy  ${c}`);
      // Directories that already exist are not worth a line each.
      for (const u of p.unchanged) if (!u.endsWith("/")) lines.push(`              up to date  ${u}`);
    }
  }
  for (const s of r.post_sync) {
    const what = `postSync ${s.feature}: ${s.run}`;
    if (s.status === "would_run") lines.push(`would run   ${what}`);
    else if (s.status === "succeeded") lines.push(`ran         ${what}`);
    else if (s.status === "skipped") lines.push(`skipped     ${what} (${s.reason})`);
    else lines.push(`failed      ${what} (exit ${s.exit_code})`);
  }
  return lines;
}

export function formatReport(r: SyncReport): string {
  const head = r.dry_run
    ? `dry run, nothing changed in ${r.shed} (${describeSelection(r)}): ${summarize(r)}`
    : `synced ${describeSelection(r)} into ${r.shed}: ${summarize(r)}`;
  return [head, ...pathLines(r).map((l) => `  ${l}`)].join("\n");
}
