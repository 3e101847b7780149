import { ShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import type { Shed } from "../../core/types.js";
import type { ShedListResponse } from "../../protocol/api-types.js";
import type { CliContext } from "../context.js";
import {
  findBlock,
  type HostEntry,
  hostEntry,
  installBlock,
  parseBlock,
  removeBlock,
  renderBlock,
  renderEntries,
  shadowingLines,
  sshHostName,
} from "../ssh-config-block.js";
import { asBytes, readUserSshConfig, writeUserSshConfig } from "../user-ssh-config.js";

export interface SshConfigOptions {
  install?: true;
  uninstall?: true;
  dryRun?: true;
}

/**
 * `shed ssh-config [NAME] [--install|--uninstall] [--dry-run]`.
 *
 * The installed block is keyed by host: installing NAME adds or replaces that
 * entry only; installing without NAME replaces the entries of the selected
 * server (so deleted sheds drop out) and keeps those of other servers.
 * Uninstalling NAME removes that entry; without NAME, the whole block.
 */
export async function sshConfigCommand(
  ctx: CliContext,
  name: string | undefined,
  opts: SshConfigOptions,
): Promise<void> {
  if (opts.install && opts.uninstall) {
    throw new ShedError("INVALID_REQUEST", "--install and --uninstall cannot be used together", {
      hint: "--install writes the entries into ~/.ssh/config; --uninstall removes them",
    });
  }
  if (opts.dryRun && !opts.install && !opts.uninstall) {
    throw new ShedError("INVALID_REQUEST", "--dry-run only applies to --install or --uninstall", {
      hint: "without them, shed ssh-config only prints the entries and changes nothing",
    });
  }
  if (name !== undefined) validateShedName(name);
  if (opts.uninstall) {
    uninstall(ctx, name, opts.dryRun === true);
    return;
  }
  const { server, entries } = await wantedEntries(ctx, name);
  if (!opts.install) {
    if (entries.length === 0 && !ctx.json) process.stderr.write(`no sheds on server ${server}\n`);
    ctx.result({ server, hosts: entries.map(hostInfo), config: renderEntries(entries) }, () => renderEntries(entries));
    return;
  }
  install(ctx, name, server, entries, opts.dryRun === true);
}

async function wantedEntries(
  ctx: CliContext,
  name: string | undefined,
): Promise<{ server: string; entries: HostEntry[] }> {
  const server = await ctx.server();
  const files = { keyFile: ctx.cfg.keyFile, knownHostsFile: ctx.cfg.knownHostsFile };
  let names: string[];
  if (name !== undefined) {
    // Asking first gives SHED_NOT_FOUND for a typo instead of an entry that can never connect.
    names = [(await server.api.json<Shed>("GET", `/api/sheds/${name}`)).name];
  } else {
    names = (await server.api.json<ShedListResponse>("GET", "/api/sheds")).sheds.map((s) => s.name).sort();
  }
  return { server: server.name, entries: names.map((n) => hostEntry(n, server, files)) };
}

const hostInfo = (e: HostEntry) => ({ host: e.host, shed: e.shed, server: e.server });

function install(ctx: CliContext, name: string | undefined, server: string, wanted: HostEntry[], dryRun: boolean) {
  const file = readUserSshConfig();
  const region = findBlock(file.bytes, file.file);
  const installed = region ? parseBlock(file.bytes, region) : [];
  const incoming = new Set(wanted.map((e) => e.host));
  const kept = installed.filter((e) => !incoming.has(e.host) && (name !== undefined || e.server !== server));
  const entries = [...kept, ...wanted].sort((a, b) => a.server.localeCompare(b.server) || a.host.localeCompare(b.host));
  const next =
    entries.length > 0
      ? installBlock(file.bytes, asBytes(renderBlock(entries)), file.file)
      : removeBlock(file.bytes, file.file);
  const warnings = shadowingLines(
    next,
    wanted.map((e) => e.host),
    file.file,
  ).map((line) => `${line} comes before the shed block and also matches; OpenSSH uses its settings first`);
  finish(ctx, file, next, dryRun, entries, warnings, () =>
    wanted.length === 0
      ? `no sheds on server ${server}; nothing to install`
      : `installed ${wanted.map((e) => e.host).join(", ")} in ${file.file}; connect with \`ssh ${wanted[0]?.host}\``,
  );
}

function uninstall(ctx: CliContext, name: string | undefined, dryRun: boolean) {
  const file = readUserSshConfig();
  const region = findBlock(file.bytes, file.file);
  const installed = region ? parseBlock(file.bytes, region) : [];
  const entries = name === undefined ? [] : installed.filter((e) => e.host !== sshHostName(name));
  const next =
    entries.length > 0
      ? installBlock(file.bytes, asBytes(renderBlock(entries)), file.file)
      : removeBlock(file.bytes, file.file);
  const removed = installed.filter((e) => !entries.includes(e)).map((e) => e.host);
  finish(ctx, file, next, dryRun, entries, [], () =>
    removed.length === 0 ? `nothing to remove from ${file.file}` : `removed ${removed.join(", ")} from ${file.file}`,
  );
}

function finish(
  ctx: CliContext,
  file: ReturnType<typeof readUserSshConfig>,
  next: string,
  dryRun: boolean,
  entries: HostEntry[],
  warnings: string[],
  summary: () => string,
): void {
  const changed = next !== file.bytes;
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  const result = {
    file: file.file,
    changed,
    dry_run: dryRun,
    hosts: entries.map(hostInfo),
    ...(warnings.length ? { warnings } : {}),
  };
  if (dryRun) {
    // What would be written, byte for byte; the summary goes to stderr.
    if (ctx.json) ctx.result({ ...result, content: Buffer.from(next, "latin1").toString("utf8") }, () => "");
    else {
      process.stderr.write(`dry run: ${changed ? "would write" : "no change to"} ${file.file}:\n`);
      process.stdout.write(Buffer.from(next, "latin1"));
    }
    return;
  }
  // Uninstalling from a file that is not there creates nothing.
  if (changed) writeUserSshConfig(file, next);
  ctx.result(result, () => (changed ? summary() : `${file.file} is already up to date`));
}
