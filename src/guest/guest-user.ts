import type { CredentialConfig } from "../config/server-config.js";
import { GUEST_USER } from "../core/types.js";
import { commandFailure, type GuestExec, runCollect } from "./exec.js";

/**
 * The account a shed's work belongs to: user shed, or a devcontainer.json's
 * remoteUser (else containerUser) that the image has. Shed's own steps (the
 * workspace's owner, the clone, the credentials and their known_hosts, the
 * repository's git credential store) follow it, as the commands and hooks do.
 */
export interface GuestUser {
  name: string;
  home: string;
}

export const SHED_HOME = "/home/shed";
export const SHED_USER: GuestUser = { name: GUEST_USER, home: SHED_HOME };

/**
 * A path under /home/shed (a credential's target, written for user shed in the
 * server's config) moved to the same place under `user`'s home; any other
 * path is kept.
 */
export function underHome(path: string, user: GuestUser): string {
  if (user.home === SHED_HOME) return path;
  if (path === SHED_HOME) return user.home;
  if (path.startsWith(`${SHED_HOME}/`)) return `${user.home.replace(/\/+$/, "")}${path.slice(SHED_HOME.length)}`;
  return path;
}

/** Credentials whose targets under /home/shed are moved to `user`'s home. */
export function credentialsFor(credentials: readonly CredentialConfig[], user: GuestUser): CredentialConfig[] {
  return credentials.map((c) => ({ ...c, target: underHome(c.target, user) }));
}

/** $1 the user: prints its home (from /etc/passwd: no getent on busybox images); exit 3 when there is no such user. */
const LOOKUP_SCRIPT = `id -u -- "$1" >/dev/null 2>&1 || exit 3
awk -F: -v u="$1" '$1 == u { print $6; f = 1; exit } END { exit !f }' /etc/passwd`;

/** `name` as the guest has it, with its home; undefined when the guest has no such user. */
export async function lookUpGuestUser(guest: GuestExec, name: string): Promise<GuestUser | undefined> {
  if (name === GUEST_USER) return SHED_USER;
  const r = await runCollect(guest, { argv: ["sh", "-c", LOOKUP_SCRIPT, "shed-user", name], user: "root" });
  const home = r.stdout.trim();
  if (r.exitCode !== 0 || !home.startsWith("/")) return undefined;
  return { name, home };
}

/** Runs what `guest` runs without a user of its own as `user` (root-run steps keep root). */
export function asUser(guest: GuestExec, user: GuestUser): GuestExec {
  if (user.name === GUEST_USER) return guest;
  return {
    exec: (spec) => guest.exec({ ...spec, user: spec.user ?? user.name }),
    ...(guest.hostPath ? { hostPath: (path: string) => guest.hostPath?.(path) ?? Promise.resolve(undefined) } : {}),
  };
}

/** $1 the user, $2 a folder: given to the user (its uid and login group) when it is empty. */
const HAND_OVER_SCRIPT = `[ -d "$2" ] || exit 0
[ -z "$(ls -A -- "$2")" ] || exit 0
chown -- "$(id -u -- "$1"):$(id -g -- "$1")" "$2"`;

/** Gives an empty folder (a new workspace volume) to `user`; one with files keeps its owner. */
export async function handEmptyFolderTo(guest: GuestExec, folder: string, user: GuestUser): Promise<void> {
  const r = await runCollect(guest, {
    argv: ["sh", "-c", HAND_OVER_SCRIPT, "shed-hand-over", user.name, folder],
    user: "root",
  });
  if (r.exitCode !== 0) throw commandFailure(`giving ${folder} to user ${user.name}`, r.stderr, r.exitCode);
}
