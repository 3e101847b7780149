import { ShedError } from "../core/errors.js";
import { type GuestExec, runCollect } from "./exec.js";
import { HOOK_LOG_DIR } from "./hook-runner.js";
import { INSTALL_STATE_FILE } from "./install-state.js";

/**
 * Gives user shed the uid and gid of a --local-dir's owner, so the shed can
 * write its workspace and what it writes belongs to that owner on the host
 * (what dev containers call updateRemoteUserUID). Runs once, at create, as
 * root, before anything runs as user shed; /etc/passwd and /etc/group live in
 * the guest's own disk (Docker: the container's writable layer), so the change
 * lasts across stop and start.
 *
 * - A uid that is another account in the image is never shared: user shed
 *   keeps its uid and the caller warns, naming the account (as dev containers
 *   do). Sharing it (`usermod -o`) would make that account and shed one user.
 * - A gid that is another group in the image becomes shed's primary group
 *   (the group is not changed, shed only joins it), so files still get the
 *   owner's gid on the host.
 * - passwd and group are edited with awk rather than usermod/groupmod: usermod
 *   re-owns everything under the home itself and would walk into bind mounts.
 * - Files owned by shed's old uid or gid under its home and Shed's own folders
 *   are re-owned, but never through a mount point below them: live-mounted
 *   credentials keep their host owner. /proc/self/mountinfo lists the mount
 *   points (find -xdev alone misses bind mounts from the same device).
 */

/** User shed's uid in shed-base; a --local-dir shed's user gets the directory owner's. */
export const DEFAULT_GUEST_UID = 1000;

/** Shed's folders besides the home, re-owned with it (the hook-log folder may be a volume of the shed's own). */
const SHED_DIRS = [INSTALL_STATE_FILE.slice(0, INSTALL_STATE_FILE.lastIndexOf("/")), HOOK_LOG_DIR];

/**
 * $1 uid, $2 gid, then Shed's own folders. Prints one line: `unchanged`,
 * `uid-taken<TAB>ACCOUNT`, or `mapped<TAB>GROUP` (GROUP: the image's existing
 * group that became shed's primary group, empty when shed's own group took the gid).
 */
const SCRIPT = `set -eu -o pipefail
uid=$1 gid=$2
shift 2
entry=$(getent passwd shed) || { echo "the image has no user named shed" >&2; exit 3; }
IFS=: read -r _ _ old_uid old_gid _ home _ <<<"$entry"
if [ "$old_uid" = "$uid" ] && [ "$old_gid" = "$gid" ]; then echo unchanged; exit 0; fi
if [ "$old_uid" != "$uid" ]; then
  taken=$(getent passwd "$uid" | cut -d: -f1) || taken=
  if [ -n "$taken" ]; then printf 'uid-taken\\t%s\\n' "$taken"; exit 0; fi
fi
group=$(getent group "$gid" | cut -d: -f1) || group=
[ "$group" = shed ] && group=

# stdin replaces file $1 atomically, keeping its owner and mode.
rewrite() {
  tmp=$(mktemp "$1.shed-XXXXXX")
  cat > "$tmp"
  chmod --reference="$1" -- "$tmp"
  chown --reference="$1" -- "$tmp"
  mv -f -- "$tmp" "$1"
}
awk -F: -v OFS=: -v u="$uid" -v g="$gid" '$1 == "shed" { $3 = u; $4 = g } { print }' /etc/passwd | rewrite /etc/passwd
if [ -z "$group" ] && [ "$gid" != "$old_gid" ]; then
  awk -F: -v OFS=: -v g="$gid" '$1 == "shed" { $3 = g } { print }' /etc/group | rewrite /etc/group
fi

mounts=()
while read -r _ _ _ _ mp _; do
  mp=\${mp//\\\\040/ }; mp=\${mp//\\\\011/$'\\t'}; mp=\${mp//\\\\012/$'\\n'}; mp=\${mp//\\\\134/\\\\}
  mounts+=("$mp")
done < /proc/self/mountinfo

list=$(mktemp)
trap 'rm -f -- "$list"' EXIT
# $1 a folder to re-own, $2 "home" when the folder itself must not be a mount point.
collect() {
  local root=$1 m p inner=()
  [ -d "$root" ] && [ ! -L "$root" ] || return 0
  for m in "\${mounts[@]}"; do
    if [ "$m" = "$root" ] && [ "$2" = home ]; then return 0; fi
    case "$m" in "$root"/*) inner+=("$m") ;; esac
  done
  while IFS= read -r -d '' p; do
    for m in "\${inner[@]}"; do
      if [ "$p" = "$m" ]; then continue 2; fi
      case "$p" in "$m"/*) continue 2 ;; esac
    done
    printf '%s\\0' "$p"
  done < <(find "$root" -xdev \\( -user "$old_uid" -o -group "$old_gid" \\) -print0) >> "$list"
}
collect "$home" home
for d in "$@"; do collect "$d" own; done
if [ "$uid" != "$old_uid" ]; then xargs -0 -r -a "$list" chown -h --from="$old_uid" "$uid" --; fi
if [ "$gid" != "$old_gid" ]; then xargs -0 -r -a "$list" chown -h --from=":$old_gid" ":$gid" --; fi
printf 'mapped\\t%s\\n' "$group"`;

export type ShedUserChange =
  | { kind: "unchanged" }
  /** existingGroup: the image's group whose gid the owner has, now shed's primary group. */
  | { kind: "mapped"; existingGroup: string | undefined }
  | { kind: "uid_taken"; account: string };

export async function matchShedUserTo(guest: GuestExec, uid: number, gid: number): Promise<ShedUserChange> {
  const r = await runCollect(guest, {
    argv: ["bash", "-c", SCRIPT, "shed-user", String(uid), String(gid), ...SHED_DIRS],
    user: "root",
  });
  const [kind, arg = ""] = r.stdout.trim().split("\t");
  if (r.exitCode === 0 && kind === "unchanged") return { kind: "unchanged" };
  if (r.exitCode === 0 && kind === "uid-taken") return { kind: "uid_taken", account: arg };
  if (r.exitCode === 0 && kind === "mapped") return { kind: "mapped", existingGroup: arg || undefined };
  const detail = r.stderr.trim().split("\n").slice(-3).join("; ").slice(0, 400) || `exit ${r.exitCode}`;
  throw new ShedError("BACKEND_ERROR", `could not give user shed uid ${uid} and gid ${gid}: ${detail}`, {
    hint: "the image needs bash, getent, awk and GNU coreutils (chown --from); or chown the directory to uid 1000",
  });
}
