import { statSync } from "node:fs";
import type { CredentialConfig } from "../../config/server-config.js";
import type { Warn } from "../../core/events.js";
import { GUEST_USER } from "../../core/types.js";
import { commandFailure, type GuestExec, runCollect } from "../../guest/exec.js";
import { type GuestUser, underHome } from "../../guest/guest-user.js";
import { knownHostsNote } from "../../guest/known-hosts-seed.js";
import { DEFAULT_GUEST_UID } from "../../guest/shed-user.js";

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
 *   with a devcontainer.json's remoteUser, every credential is a copy, owned
 *   by that user, its target moved from /home/shed to that user's home;
 *   `readonly` takes every w bit off the copy. The copy is made at create and
 *   made again on every start (not live: edits on the host show after a
 *   restart, edits in the shed are not written back).
 *
 * Guest work runs fixed scripts; paths and patterns travel as positional
 * parameters. Messages name credentials and paths, never file contents.
 */

export const STAGING_DIR = "/run/shed-credentials";

export type CredentialMode = "direct" | "copy";

export interface PlannedCredential extends CredentialConfig {
  mode: CredentialMode;
}

export function stagingPath(c: { name: string }): string {
  return `${STAGING_DIR}/${c.name}`;
}

/**
 * Each present credential with its mode. User shed gets a --local-dir owner's
 * uid (root excepted, src/guest/shed-user.ts), so a source owned by that uid
 * is mounted live; any other is staged and copied.
 */
export function planCredentials(
  present: readonly CredentialConfig[],
  spec: { localDir?: { uid: number } | undefined; remoteUser?: string | undefined },
): PlannedCredential[] {
  const { localDir } = spec;
  const guestUid = localDir && localDir.uid !== 0 ? localDir.uid : DEFAULT_GUEST_UID;
  // A devcontainer.json's remoteUser gets copies in its own home, owned by it: where that is (and
  // whether the image has the user) is known only once the container runs, after the mounts are made.
  if (spec.remoteUser !== undefined) return present.map((c) => ({ ...c, mode: "copy" }));
  return present.map((c) => {
    let uid = -1;
    try {
      uid = statSync(c.source).uid;
    } catch {
      // Gone since the request was checked: staged, so the mount's failure names it.
    }
    // A mount cannot leave files out, so `exclude` always means a copy.
    return { ...c, mode: uid === guestUid && c.exclude.length === 0 ? "direct" : "copy" };
  });
}

/**
 * $1 staging path, $2 target, $3 "1" for readonly, $4 the owner (shed, or a
 * devcontainer.json's remoteUser), then exclude patterns.
 * Exit 4: nothing is staged under that name (a direct credential, or one
 * configured after the shed was made).
 */
const COPY_SCRIPT = `set -eu -o pipefail
src=$1 dst=$2 ro=$3 owner=$4
shift 4
[ -e "$src" ] || exit 4
uid=$(id -u -- "$owner") gid=$(id -g -- "$owner")
mkparents() {
  [ -e "$1" ] && return 0
  mkparents "$(dirname -- "$1")"
  mkdir -- "$1"
  chown "$uid:$gid" -- "$1"
}
mkparents "$(dirname -- "$dst")"
if [ -d "$src" ]; then
  if [ -e "$dst" ] && [ ! -d "$dst" ]; then echo "$dst exists and is not a directory" >&2; exit 1; fi
  n=$#
  while [ "$n" -gt 0 ]; do set -- "$@" "--exclude=$1"; shift; n=$((n - 1)); done
  mkdir -p -- "$dst"
  # The owner's ids as the guest has them now (a --local-dir shed's user has its directory owner's).
  tar -C "$src" --owner="$uid" --group="$gid" --numeric-owner "$@" -cf - . | tar -C "$dst" -xpf -
else
  if [ -d "$dst" ]; then echo "$dst is a directory but the source is a file" >&2; exit 1; fi
  tmp="$dst.shed-copy"
  cp -p -- "$src" "$tmp"
  chown "$uid:$gid" -- "$tmp"
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
 * Copies one staged credential to its target, moved from /home/shed to the
 * user's home, owned by the user; false when nothing is staged under its name.
 */
export async function copyCredential(guest: GuestExec, c: CredentialConfig, user: GuestUser): Promise<boolean> {
  const target = underHome(c.target, user);
  const r = await runCollect(guest, {
    argv: [
      "bash",
      "-c",
      COPY_SCRIPT,
      "shed-credential",
      stagingPath(c),
      target,
      c.readonly ? "1" : "0",
      user.name,
      ...c.exclude,
    ],
    user: "root",
  });
  if (r.exitCode === 4) return false;
  if (r.exitCode !== 0) throw commandFailure(`credential ${c.name}: copy to ${target}`, r.stderr, r.exitCode);
  return true;
}

/** Create step 4 on a bind-mount backend: copies, parent ownership, known_hosts. One failure is one warning. */
export async function setUpCredentials(
  guest: GuestExec,
  creds: readonly PlannedCredential[],
  user: GuestUser,
  warn: Warn,
) {
  const direct = creds.filter((c) => c.mode === "direct");
  let copied = 0;
  for (const c of creds.filter((x) => x.mode === "copy")) {
    try {
      if (await copyCredential(guest, c, user)) copied += 1;
      else
        warn(
          `credential ${c.name}: its staging mount ${stagingPath(c)} is missing; not copied to ${underHome(c.target, user)}`,
        );
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
  const parts = [`${direct.length} bind-mounted (live)`, `${copied} copied as user ${user.name} (refreshed on start)`];
  // User shed's known_hosts was seeded when the shed became ready; a copied credential may have brought
  // its own file, and another user's is seeded here.
  if (copied === 0 && user.name === GUEST_USER) return `${parts.join(", ")}; known_hosts seeded`;
  return `${parts.join(", ")}; ${await knownHostsNote(guest, warn, user)}`;
}

/** Start step 3 on a bind-mount backend: copies again every credential staged at create, then known_hosts if one was copied. */
export async function refreshCredentials(
  guest: GuestExec,
  configs: readonly CredentialConfig[],
  user: GuestUser,
  warn: Warn,
) {
  let copied = 0;
  for (const c of configs) {
    try {
      if (await copyCredential(guest, c, user)) copied += 1;
    } catch (err) {
      warn((err as Error).message);
    }
  }
  const refreshed = `${copied} copied credential${copied === 1 ? "" : "s"} refreshed`;
  // The container keeps its files across a stop: known_hosts is as create (or the last copy) left it,
  // unless a copy made now brought its own file. Seeding it again then is an exec for nothing.
  if (copied === 0) return `${refreshed}; known_hosts kept`;
  return `${refreshed}; ${await knownHostsNote(guest, warn, user)}`;
}
