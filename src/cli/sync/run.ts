import { homedir } from "node:os";
import type { SelectedFeature } from "../../config/sync-file.js";
import type { CliContext } from "../context.js";
import { fetchManifest } from "./manifest.js";
import { compare, type LocalEntry, REMOTE_HOME, rehome, type ScannedPath, scanPath } from "./plan.js";
import { runInShed } from "./remote.js";
import { sendEntries, type TransferResult } from "./transfer.js";

export interface SyncRequest {
  /** The shed. */
  name: string;
  /** The profile the features came from (none with --feature). */
  profile?: string | undefined;
  features: SelectedFeature[];
  dryRun: boolean;
}

/** Live reporting while a sync runs (progress on stderr). */
export interface SyncEvents {
  warning(message: string): void;
  /** Output of a postSync command. */
  output(text: string, stream: "stdout" | "stderr"): void;
}

export type PathStatus = "synced" | "up_to_date" | "would_sync" | "missing" | "failed";

export interface PathReport {
  feature: string;
  source: string;
  target: string;
  /** The target in the shed, ~ expanded. */
  remote: string;
  status: PathStatus;
  /** Files and symlinks the source holds (after include patterns). */
  files: number;
  /** Shed paths sent (with --dry-run: to send) and already up to date; directories end with "/". */
  changed: string[];
  unchanged: string[];
  /** Bytes of the changed files. */
  bytes: number;
  warnings: string[];
}

export interface PostSyncReport {
  feature: string;
  run: string;
  status: "succeeded" | "failed" | "would_run" | "skipped";
  exit_code?: number;
  reason?: string;
}

export interface SyncReport {
  shed: string;
  profile?: string;
  features: string[];
  dry_run: boolean;
  /** What was sent: 0 everywhere with --dry-run (see would_send) and when everything was up to date. */
  files_sent: number;
  dirs_sent: number;
  links_sent: number;
  bytes_sent: number;
  would_send?: { files: number; dirs: number; links: number; bytes: number };
  /** Entries (files, directories, symlinks) already as they should be. */
  up_to_date: number;
  paths: PathReport[];
  post_sync: PostSyncReport[];
  warnings: string[];
  /** False when a copy or a postSync command failed (missing sources are only warnings). */
  ok: boolean;
}

/**
 * One sync: read the sources here, fetch a manifest of the targets from the
 * shed, send only what differs in one tar stream, then run the postSync
 * commands. Nothing is sent for entries already up to date; with dryRun
 * nothing is changed at all. Throws only when the shed cannot be reached.
 */
export async function runSync(ctx: CliContext, req: SyncRequest, events: SyncEvents): Promise<SyncReport> {
  const home = homedir();
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    events.warning(m);
  };
  let scanned: ScannedPath[] = [];
  for (const f of req.features) {
    for (const spec of f.paths) {
      const s = await scanPath(f.name, spec, home);
      for (const w of s.warnings) warn(w);
      scanned.push(s);
    }
  }
  const remotesOf = (list: ScannedPath[]) => [...new Set(list.flatMap((s) => s.entries.map((e) => e.remote)))];
  const first = await fetchManifest(ctx, req.name, remotesOf(scanned));
  let manifest = first.entries;
  // The shed's user is a devcontainer.json's remoteUser: `~` is its home, listed again there.
  const remoteHome = first.home.replace(/\/+$/, "");
  if (remoteHome.startsWith("/") && remoteHome !== REMOTE_HOME) {
    scanned = scanned.map((s) => rehome(s, remoteHome));
    manifest = (await fetchManifest(ctx, req.name, remotesOf(scanned))).entries;
  }
  const plans = compare(scanned, manifest);

  // Two paths may name the same shed directory: send each entry once.
  const toSend: LocalEntry[] = [];
  const queued = new Set<string>();
  for (const p of plans) {
    for (const e of p.send) {
      if (e.type === "dir" && queued.has(e.remote)) continue;
      queued.add(e.remote);
      toSend.push(e);
    }
  }
  let transfer: TransferResult | undefined;
  if (!req.dryRun) {
    transfer = await sendEntries(ctx, req.name, toSend);
    for (const m of transfer.errors) warn(`copying files: ${m}`);
  }

  const paths: PathReport[] = plans.map(({ path, send, same }) => {
    const failures = (transfer?.failures ?? []).filter(
      (f) => f.remote === path.remote || f.remote.startsWith(`${path.remote}/`),
    );
    const pathWarnings = [...path.warnings];
    for (const f of failures) {
      const msg = `${path.source} -> ${f.remote}: ${f.message}`;
      pathWarnings.push(msg);
      warn(msg);
    }
    let status: PathStatus;
    if (path.kind === "missing") status = "missing";
    else if (path.kind === "unreadable" || failures.length > 0) status = "failed";
    else if (send.length === 0) status = "up_to_date";
    else status = req.dryRun ? "would_sync" : "synced";
    return {
      feature: path.feature,
      source: path.source,
      target: path.target,
      remote: path.remote,
      status,
      files: path.entries.filter((e) => e.type !== "dir").length,
      changed: send.map(shownRemote),
      unchanged: same.map(shownRemote),
      bytes: send.reduce((n, e) => n + e.size, 0),
      warnings: pathWarnings,
    };
  });

  const postSync = await runPostSync(ctx, req, scanned, events, warn);
  const count = (t: LocalEntry["type"]) => toSend.filter((e) => e.type === t).length;
  const report: SyncReport = {
    shed: req.name,
    ...(req.profile !== undefined ? { profile: req.profile } : {}),
    features: req.features.map((f) => f.name),
    dry_run: req.dryRun,
    files_sent: transfer?.files ?? 0,
    dirs_sent: transfer?.dirs ?? 0,
    links_sent: transfer?.links ?? 0,
    bytes_sent: transfer?.bytes ?? 0,
    ...(req.dryRun
      ? {
          would_send: {
            files: count("file"),
            dirs: count("dir"),
            links: count("symlink"),
            bytes: toSend.reduce((n, e) => n + e.size, 0),
          },
        }
      : {}),
    up_to_date: plans.reduce((n, p) => n + p.same.length, 0),
    paths,
    post_sync: postSync,
    warnings,
    ok:
      (transfer?.errors.length ?? 0) === 0 &&
      paths.every((p) => p.status !== "failed") &&
      postSync.every((p) => p.status !== "failed"),
  };
  return report;
}

const shownRemote = (e: LocalEntry): string => (e.type === "dir" ? `${e.remote.replace(/\/$/, "")}/` : e.remote);

/**
 * Each feature's postSync commands, in order, as user shed with `bash -lc`
 * (a login shell, so PATH from provisioning applies), after the copy; their
 * output is shown live. They run on every sync (write them to be repeatable),
 * except for a feature none of whose sources exists.
 */
async function runPostSync(
  ctx: CliContext,
  req: SyncRequest,
  scanned: ScannedPath[],
  events: SyncEvents,
  warn: (m: string) => void,
): Promise<PostSyncReport[]> {
  const reports: PostSyncReport[] = [];
  for (const f of req.features) {
    const mine = scanned.filter((s) => s.feature === f.name);
    const nothing = mine.length > 0 && mine.every((s) => s.kind === "missing" || s.kind === "unreadable");
    for (const step of f.postSync ?? []) {
      if (req.dryRun) {
        reports.push({ feature: f.name, run: step.run, status: "would_run" });
        continue;
      }
      if (nothing) {
        reports.push({ feature: f.name, run: step.run, status: "skipped", reason: "none of its sources exists" });
        continue;
      }
      const res = await runInShed(ctx, req.name, ["bash", "-lc", step.run], {
        onStdout: (c) => events.output(c.toString("utf8"), "stdout"),
        onStderr: (c) => events.output(c.toString("utf8"), "stderr"),
      });
      if (res.code === 0) reports.push({ feature: f.name, run: step.run, status: "succeeded", exit_code: 0 });
      else {
        reports.push({ feature: f.name, run: step.run, status: "failed", exit_code: res.code });
        warn(`postSync of ${f.name} failed (exit ${res.code}): ${step.run}`);
      }
    }
  }
  return reports;
}
