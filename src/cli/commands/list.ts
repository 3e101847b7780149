import { toShedError } from "../../core/errors.js";
import type { Shed } from "../../core/types.js";
import type { ShedListResponse } from "../../protocol/api-types.js";
import { ApiClient } from "../api-client.js";
import type { ClientConfig } from "../client-config.js";
import { printResult } from "../result.js";
import { safeLine, safeText } from "../safe-text.js";
import { table } from "../table.js";

/**
 * What `shed list` needs from its caller: the full CLI passes its CliContext;
 * the quick path (quick.ts) passes the same without the modules behind it
 * (commander, the local server's start-up), so nothing here may import them.
 */
export interface ListCaller {
  cfg: ClientConfig;
  json: boolean;
  server(): Promise<{ name: string; api: ApiClient }>;
}

/** `verbose` (-v) adds each shed's CPUS and MEMORY (what it was made with; "-" for no limit). */
export async function listSheds(caller: ListCaller, all: boolean, verbose = false): Promise<void> {
  const { cfg } = caller;
  const rows: (Shed & { server: string })[] = [];
  const errors: { server: string; error: string }[] = [];
  if (all && Object.keys(cfg.data.servers).length > 0) {
    await Promise.all(
      Object.entries(cfg.data.servers).map(async ([name, entry]) => {
        try {
          const res = await new ApiClient(name, entry).json<ShedListResponse>("GET", "/api/sheds");
          rows.push(...res.sheds.map((s) => ({ ...s, server: name })));
        } catch (err) {
          errors.push({ server: name, error: toShedError(err).message });
        }
      }),
    );
  } else {
    const server = await caller.server();
    const res = await server.api.json<ShedListResponse>("GET", "/api/sheds");
    rows.push(...res.sheds.map((s) => ({ ...s, server: server.name })));
  }
  // By code unit, not localeCompare: its first call loads ICU's collation, about 30 ms of a list. For
  // shed names (a-z, 0-9, -) the order is the same.
  rows.sort((a, b) => byCodeUnit(a.server, b.server) || byCodeUnit(a.name, b.name));
  for (const e of errors) process.stderr.write(`warning: server ${e.server}: ${safeText(e.error)}\n`);
  printResult(caller.json, { sheds: rows, ...(errors.length ? { errors } : {}) }, () =>
    rows.length === 0 ? "no sheds; create one with `shed create NAME --repo URL`" : humanList(rows, verbose),
  );
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function humanList(rows: (Shed & { server: string })[], verbose: boolean): string {
  return [
    table(
      ["NAME", "STATUS", "SERVER", "BACKEND", "IMAGE", "CREATED", "SOURCE", ...(verbose ? ["CPUS", "MEMORY"] : [])],
      rows.map((s) => [
        s.name,
        s.status +
          (s.owner === "unowned" ? ", unowned" : "") +
          (s.interrupted ? `, ${s.interrupted.operation} interrupted at ${s.interrupted.step}` : "") +
          (s.warnings.length ? ` (${s.warnings.length} warning${s.warnings.length > 1 ? "s" : ""})` : ""),
        s.server,
        s.backend,
        s.image,
        s.created_at.slice(0, 16).replace("T", " "),
        s.repo ?? s.local_dir ?? "",
        ...(verbose ? [sizeCell(s.cpus, ""), sizeCell(s.memory_mib, " MiB")] : []),
      ]),
    ),
    // A shed an operation was cut off in (the server was killed): which step, and the way out.
    ...rows
      .filter((s) => s.interrupted)
      .map(
        (s) =>
          `${safeLine(s.name)} (server ${safeLine(s.server)}): ${safeLine(s.interrupted?.message)}\n  hint: ${safeLine(s.interrupted?.hint)}`,
      ),
    // An unowned shed is left alone by its server: say why and what to do, under the table.
    ...rows
      .filter((s) => s.owner === "unowned")
      .map(
        (s) =>
          `${safeLine(s.name)} (server ${safeLine(s.server)}) is unowned: made by another shed-server or an older Shed without a server id; the server will not start, stop, delete or exec in it.${s.owner_hint ? `\n  hint: ${safeLine(s.owner_hint)}` : ""}`,
      ),
  ].join("\n");
}

/** A size from the server, or "-" where the shed has no limit (or a server too old to say). */
function sizeCell(value: unknown, unit: string): string {
  return typeof value === "number" && Number.isFinite(value) ? `${value}${unit}` : "-";
}
