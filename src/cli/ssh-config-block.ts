import { ShedError } from "../core/errors.js";
import { validateShedName } from "../core/names.js";
import type { ServerEntry } from "./client-config.js";
import { checkSshEntry } from "./ssh-config-values.js";
import { hostAlias } from "./ssh-files.js";

/**
 * `Host shed-<name>` entries for the user's own OpenSSH config, and the
 * delimited block of ~/.ssh/config that `shed ssh-config --install` owns. The
 * functions here are pure text operations: every byte outside the block is
 * kept as it was, line endings and a missing final newline included.
 */

export const BEGIN_MARKER = "# >>> shed (managed: shed ssh-config) >>>";
export const END_MARKER = "# <<< shed <<<";
const BLOCK_NOTE = "# Written by `shed ssh-config --install`; edits inside this block are replaced.";

export interface HostEntry {
  /** `shed-<name>`: what `ssh` and IDEs connect to. */
  host: string;
  shed: string;
  server: string;
  /** The entry's lines, `Host ...` first, without a final newline. */
  text: string;
}

export const sshHostName = (shed: string): string => `shed-${shed}`;

/** OpenSSH config values with spaces need double quotes, and cannot contain one. */
function quoted(path: string): string {
  if (/["\r\n]/.test(path)) {
    throw new ShedError("INVALID_CONFIG", `${JSON.stringify(path)} cannot be written in an OpenSSH config file`, {
      hint: "OpenSSH has no way to escape a double quote or a line break in a path: use a client config path without them (--config or $SHED_CONFIG)",
    });
  }
  return `"${path}"`;
}

export function hostEntry(
  shed: string,
  server: { name: string; entry: ServerEntry },
  files: { keyFile: string; knownHostsFile: string },
): HostEntry {
  // The shed's name came from a server (validate-response.ts refuses bad ones already): checked again
  // here, where it is written into ~/.ssh/config, as are the values from the client config.
  validateShedName(shed);
  checkSshEntry(server.name, server.entry, { file: "the client config" });
  const host = sshHostName(shed);
  const lines = [
    `Host ${host}`,
    `  HostName ${server.entry.host}`,
    `  Port ${server.entry.ssh_port}`,
    `  User ${shed}`,
    // The known_hosts beside the client config pins the server's key under this alias.
    `  HostKeyAlias ${hostAlias(server.name)}`,
    `  UserKnownHostsFile ${quoted(files.knownHostsFile)}`,
    `  IdentityFile ${quoted(files.keyFile)}`,
    "  IdentitiesOnly yes",
    "  StrictHostKeyChecking yes",
    // The entry asked for agent forwarding (forward_agent: true), as `shed console` does then.
    ...(server.entry.forward_agent ? ["  ForwardAgent yes"] : []),
  ];
  return { host, shed, server: server.name, text: lines.join("\n") };
}

/** The entries as printed by `shed ssh-config` (a blank line between entries, a final newline). */
export function renderEntries(entries: readonly HostEntry[]): string {
  return entries.length ? `${entries.map((e) => e.text).join("\n\n")}\n` : "";
}

/** The managed block (at least one entry), from BEGIN_MARKER to END_MARKER, without a final newline. */
export function renderBlock(entries: readonly HostEntry[]): string {
  return [BEGIN_MARKER, BLOCK_NOTE, entries.map((e) => e.text).join("\n\n"), END_MARKER].join("\n");
}

interface Region {
  /** Offset of BEGIN_MARKER (at a line start). */
  start: number;
  /** Offset just after END_MARKER (its line ending, if any, is outside the region). */
  end: number;
}

function markerAtLineStart(text: string, marker: string, from: number): number {
  let i = text.indexOf(marker, from);
  while (i > 0 && text[i - 1] !== "\n") i = text.indexOf(marker, i + 1);
  return i;
}

const lineOf = (text: string, offset: number): number => text.slice(0, offset).split("\n").length;

export function findBlock(text: string, file: string): Region | undefined {
  const start = markerAtLineStart(text, BEGIN_MARKER, 0);
  if (start < 0) return undefined;
  const endAt = markerAtLineStart(text, END_MARKER, start + BEGIN_MARKER.length);
  if (endAt < 0) {
    throw new ShedError("INVALID_CONFIG", `${file}:${lineOf(text, start)}: the shed block has no end marker`, {
      hint: `add a line \`${END_MARKER}\` where the shed block ends, or delete the line \`${BEGIN_MARKER}\``,
    });
  }
  return { start, end: endAt + END_MARKER.length };
}

/** The entries inside an installed block (each starts at a `Host` line; the server is read from HostKeyAlias). */
export function parseBlock(text: string, region: Region): HostEntry[] {
  const lines = text.slice(region.start, region.end).split("\n").slice(1, -1);
  const entries: HostEntry[] = [];
  let current: string[] | undefined;
  const flush = () => {
    if (!current) return;
    while (current.length > 1 && (current.at(-1) ?? "").trim() === "") current.pop();
    const head = /^Host\s+(\S+)/.exec(current[0] ?? "");
    const alias = current.map((l) => /^\s*HostKeyAlias\s+shed\.(\S+)/.exec(l)?.[1]).find((s) => s !== undefined);
    const user = current.map((l) => /^\s*User\s+(\S+)/.exec(l)?.[1]).find((s) => s !== undefined);
    if (head?.[1]) entries.push({ host: head[1], shed: user ?? "", server: alias ?? "", text: current.join("\n") });
    current = undefined;
  };
  for (const raw of lines) {
    const line = raw.replace(/\r$/, "");
    if (/^Host\s/.test(line)) {
      flush();
      current = [line];
    } else if (current) current.push(line);
  }
  flush();
  return entries;
}

/**
 * The new content with `block` in place of the installed one, or appended. A
 * file without a final newline gets one before the block and none after it,
 * so removing the block later gives back the very same bytes.
 */
export function installBlock(text: string, block: string, file: string): string {
  const region = findBlock(text, file);
  if (region) return text.slice(0, region.start) + block + text.slice(region.end);
  if (text === "") return `${block}\n`;
  return text.endsWith("\n") ? `${text}${block}\n` : `${text}\n${block}`;
}

/** The content without the managed block (unchanged when there is none); the inverse of installBlock. */
export function removeBlock(text: string, file: string): string {
  const region = findBlock(text, file);
  if (!region) return text;
  const after = text.slice(region.end);
  if (after.startsWith("\n")) return text.slice(0, region.start) + after.slice(1);
  if (after.startsWith("\r\n")) return text.slice(0, region.start) + after.slice(2);
  // The block ends the file without a newline: installBlock added the one before it.
  const cut = region.start > 0 && text[region.start - 1] === "\n" ? region.start - 1 : region.start;
  return text.slice(0, cut) + after;
}

/** An OpenSSH `Host` pattern list matches a host: some pattern matches and no negated one does. */
function hostMatches(patterns: string[], host: string): boolean {
  const glob = (p: string) =>
    new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, "\\$&")
        .replaceAll("*", ".*")
        .replaceAll("?", ".")}$`,
      "i",
    );
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith("!")) {
      if (glob(p.slice(1)).test(host)) return false;
    } else if (glob(p).test(host)) matched = true;
  }
  return matched;
}

/**
 * `Host` or `Match all` lines before the block that also apply to the given
 * hosts: OpenSSH takes the first value it finds for each option, so settings
 * there (User, IdentityFile, ...) win over the block's.
 */
export function shadowingLines(text: string, hosts: readonly string[], file: string): string[] {
  const region = findBlock(text, file);
  const before = region ? text.slice(0, region.start) : text;
  const found: string[] = [];
  before.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    const host = /^Host\s+(.+)$/i.exec(line);
    const applies = host?.[1]
      ? hosts.some((h) => hostMatches(host[1]?.split(/\s+/) ?? [], h))
      : /^Match\s+all$/i.test(line);
    if (applies) found.push(`${file}:${i + 1}: ${line}`);
  });
  return found;
}
