import { statSync } from "node:fs";
import type { CredentialConfig } from "../config/server-config.js";
import { ShedError } from "../core/errors.js";
import { type GuestExec, runCollect } from "./exec.js";
import { KNOWN_HOSTS } from "./known-hosts.js";

/**
 * Credentials on a bind-mount backend (Docker). A bind mount shows the host
 * file's owner, and the server usually runs as root, so a root-owned 0600 SSH
 * key would be unreadable for user shed. Two modes, chosen per credential at
 * create from the owner of its source:
 *
 * - "direct": the source is owned by user shed's uid in the guest (1000 in
 *   shed-base; a --local-dir's owner, see src/guest/shed-user.ts) and has
 *   no `exclude`. It is bind-mounted at its target: live in both directions,
 *   `readonly` makes the mount read-only.
 * - "copy": any other owner, or any `exclude`. The source is bind-mounted read-only at
 *   /run/shed-credentials/<name> (the staging path) and copied to its target
 *   as root, keeping modes, owned by shed:shed, leaving out `exclude` patterns;
 *   `readonly` takes every w bit off the copy. The copy is made at create and
 *   made again on every start (not live: edits on the host show after a
 *   restart, edits in the shed are not written back).
 *
 * Guest work runs fixed scripts; paths and patterns travel as positional
 * parameters. Messages name credentials and paths, never file contents.
 */

/** User shed's uid in shed-base; a --local-dir shed's user gets the directory owner's (src/guest/shed-user.ts). */
export const DEFAULT_GUEST_UID = 1000;
export const STAGING_DIR = "/run/shed-credentials";
export const KNOWN_HOSTS_FILE = "/home/shed/.ssh/known_hosts";

export type CredentialMode = "direct" | "copy";

export interface PlannedCredential extends CredentialConfig {
  mode: CredentialMode;
}

export function stagingPath(c: { name: string }): string {
  return `${STAGING_DIR}/${c.name}`;
}

/**
 * Splits the configured credentials into present ones (with their mode) and
 * missing ones; `guestUid` is the uid user shed will have in the new shed.
 */
export function planCredentials(
  configs: readonly CredentialConfig[],
  guestUid: number,
): {
  present: PlannedCredential[];
  missing: CredentialConfig[];
} {
  const present: PlannedCredential[] = [];
  const missing: CredentialConfig[] = [];
  for (const c of configs) {
    let uid: number;
    try {
      uid = statSync(c.source).uid;
    } catch {
      missing.push(c);
      continue;
    }
    // A mount cannot leave files out, so `exclude` always means a copy.
    present.push({ ...c, mode: uid === guestUid && c.exclude.length === 0 ? "direct" : "copy" });
  }
  return { present, missing };
}

/**
 * $1 staging path, $2 target, $3 "1" for readonly, then exclude patterns.
 * Exit 4: nothing is staged under that name (a direct credential, or one
 * configured after the shed was made).
 */
const COPY_SCRIPT = `set -eu -o pipefail
src=$1 dst=$2 ro=$3
shift 3
[ -e "$src" ] || exit 4
mkparents() {
  [ -e "$1" ] && return 0
  mkparents "$(dirname -- "$1")"
  mkdir -- "$1"
  chown shed:shed -- "$1"
}
mkparents "$(dirname -- "$dst")"
if [ -d "$src" ]; then
  if [ -e "$dst" ] && [ ! -d "$dst" ]; then echo "$dst exists and is not a directory" >&2; exit 1; fi
  n=$#
  while [ "$n" -gt 0 ]; do set -- "$@" "--exclude=$1"; shift; n=$((n - 1)); done
  mkdir -p -- "$dst"
  # User shed's ids as the guest has them now (a --local-dir shed's user has its directory owner's).
  tar -C "$src" --owner="$(id -u shed)" --group="$(id -g shed)" --numeric-owner "$@" -cf - . | tar -C "$dst" -xpf -
else
  if [ -d "$dst" ]; then echo "$dst is a directory but the source is a file" >&2; exit 1; fi
  tmp="$dst.shed-copy"
  cp -p -- "$src" "$tmp"
  chown shed:shed -- "$tmp"
  mv -f -- "$tmp" "$dst"
fi
if [ "$ro" = 1 ]; then chmod -R a-w -- "$dst"; fi`;

/**
 * Docker makes the missing parents of a mount target as root; those under
 * /home/shed are handed to user shed so it can still write in its home.
 */
const FIX_PARENTS_SCRIPT = `for t in "$@"; do
  d=$(dirname -- "$t")
  while case "$d" in /home/shed/*) true ;; *) false ;; esac; do
    [ "$(stat -c %u -- "$d")" = 0 ] && chown shed:shed -- "$d"
    d=$(dirname -- "$d")
  done
done
exit 0`;

/**
 * Adds the lines on stdin that known_hosts lacks (a credential's own file is
 * merged into, never replaced). Exit 5 when ~/.ssh or the file is a live bind
 * mount: that is the host's file, which Shed does not edit.
 */
export const KNOWN_HOSTS_SCRIPT = `set -eu
kh=$1
dir=\${kh%/*}
if awk -v a="$dir" -v b="$kh" '$5 == a || $5 == b { f = 1 } END { exit !f }' /proc/self/mountinfo; then exit 5; fi
if [ ! -d "$dir" ]; then mkdir -m 700 -- "$dir"; chown shed:shed -- "$dir"; fi
[ -e "$kh" ] || { : > "$kh"; chmod 644 -- "$kh"; }
# One awk: the lines of stdin the file lacks (after a newline, if the file lacks its last one).
new=$(awk -v f="$kh" 'BEGIN { while ((getline l < f) > 0) have[l] = 1 }
  $0 != "" && !($0 in have) { have[$0] = 1; out = out $0 "\\n"; c++ }
  END { printf "%d\\n%s", c, out }')
added=\${new%%
*}
if [ "$added" -gt 0 ]; then
  if [ -s "$kh" ] && [ -n "$(tail -c 1 -- "$kh")" ]; then echo >> "$kh"; fi
  printf '%s\\n' "\${new#*
}" >> "$kh"
fi
chown shed:shed -- "$kh"
echo "$added"`;

export const KNOWN_HOSTS_INPUT = `${KNOWN_HOSTS.join("\n")}\n`;

export type Warn = (message: string, hint?: string) => void;

function failure(what: string, stderr: string, code: number): ShedError {
  const detail = stderr.trim().split("\n").slice(-3).join("; ").slice(0, 400);
  return new ShedError("BACKEND_ERROR", `${what} failed: ${detail || `exit ${code}`}`);
}

/** Copies one staged credential to its target; false when nothing is staged under its name. */
export async function copyCredential(guest: GuestExec, c: CredentialConfig): Promise<boolean> {
  const r = await runCollect(guest, {
    argv: [
      "bash",
      "-c",
      COPY_SCRIPT,
      "shed-credential",
      stagingPath(c),
      c.target,
      c.readonly ? "1" : "0",
      ...c.exclude,
    ],
    user: "root",
  });
  if (r.exitCode === 4) return false;
  if (r.exitCode !== 0) throw failure(`credential ${c.name}: copy to ${c.target}`, r.stderr, r.exitCode);
  return true;
}

/** Seeds known_hosts; the number of lines added, or undefined when it is a live mount left alone. */
export async function seedKnownHosts(guest: GuestExec): Promise<number | undefined> {
  const r = await runCollect(
    guest,
    { argv: ["sh", "-c", KNOWN_HOSTS_SCRIPT, "shed-known-hosts", KNOWN_HOSTS_FILE], user: "root" },
    KNOWN_HOSTS_INPUT,
  );
  if (r.exitCode === 5) return undefined;
  if (r.exitCode !== 0) throw failure(`seeding ${KNOWN_HOSTS_FILE}`, r.stderr, r.exitCode);
  return Number.parseInt(r.stdout.trim(), 10) || 0;
}

async function knownHostsNote(guest: GuestExec, warn: Warn): Promise<string> {
  try {
    const added = await seedKnownHosts(guest);
    if (added === undefined) return "known_hosts is a live mount, left as is";
    return `known_hosts: ${added} host key${added === 1 ? "" : "s"} added`;
  } catch (err) {
    warn((err as Error).message);
    return "known_hosts not seeded";
  }
}

/** Create step 4 on a bind-mount backend: copies, parent ownership, known_hosts. One failure is one warning. */
export async function setUpCredentials(guest: GuestExec, creds: readonly PlannedCredential[], warn: Warn) {
  const direct = creds.filter((c) => c.mode === "direct");
  let copied = 0;
  for (const c of creds.filter((x) => x.mode === "copy")) {
    try {
      if (await copyCredential(guest, c)) copied += 1;
      else warn(`credential ${c.name}: its staging mount ${stagingPath(c)} is missing; not copied to ${c.target}`);
    } catch (err) {
      warn((err as Error).message);
    }
  }
  if (direct.length > 0) {
    const r = await runCollect(guest, {
      argv: ["sh", "-c", FIX_PARENTS_SCRIPT, "shed-credential-parents", ...direct.map((c) => c.target)],
      user: "root",
    });
    if (r.exitCode !== 0)
      warn(`credentials: could not hand the mount targets' parents to user shed: exit ${r.exitCode}`);
  }
  const parts = [`${direct.length} bind-mounted (live)`, `${copied} copied as user shed (refreshed on start)`];
  // known_hosts was seeded when the shed became ready; a copied credential may have brought its own file.
  if (copied === 0) return `${parts.join(", ")}; known_hosts seeded`;
  return `${parts.join(", ")}; ${await knownHostsNote(guest, warn)}`;
}

/** Start step 3 on a bind-mount backend: copies again every credential staged at create, then known_hosts. */
export async function refreshCredentials(guest: GuestExec, configs: readonly CredentialConfig[], warn: Warn) {
  let copied = 0;
  for (const c of configs) {
    try {
      if (await copyCredential(guest, c)) copied += 1;
    } catch (err) {
      warn((err as Error).message);
    }
  }
  return `${copied} copied credential${copied === 1 ? "" : "s"} refreshed; ${await knownHostsNote(guest, warn)}`;
}
