import type { Warn } from "../core/events.js";
import { commandFailure, type GuestExec, runCollect } from "./exec.js";
import { type GuestUser, SHED_USER, underHome } from "./guest-user.js";
import { KNOWN_HOSTS } from "./known-hosts.js";

/** Where user shed's known_hosts lives; seeded with the published keys of common Git hosts (known-hosts.ts). */
export const KNOWN_HOSTS_FILE = "/home/shed/.ssh/known_hosts";

/**
 * $1 the file, $2 its owner (default shed). Adds the lines on stdin that
 * known_hosts lacks (a credential's own file is merged into, never replaced).
 * Exit 5 when ~/.ssh or the file is a live bind mount: that is the host's
 * file, which Shed does not edit.
 */
export const KNOWN_HOSTS_SCRIPT = `set -eu
kh=$1 owner=\${2:-shed}
dir=\${kh%/*}
if awk -v a="$dir" -v b="$kh" '$5 == a || $5 == b { f = 1 } END { exit !f }' /proc/self/mountinfo; then exit 5; fi
if [ ! -d "$dir" ]; then mkdir -m 700 -- "$dir"; chown "$owner:" -- "$dir"; fi
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
chown "$owner:" -- "$kh"
echo "$added"`;

export const KNOWN_HOSTS_INPUT = `${KNOWN_HOSTS.join("\n")}\n`;

/** Seeds a user's known_hosts; the number of lines added, or undefined when it is a live mount left alone. */
export async function seedKnownHosts(guest: GuestExec, user: GuestUser = SHED_USER): Promise<number | undefined> {
  const file = underHome(KNOWN_HOSTS_FILE, user);
  const r = await runCollect(
    guest,
    { argv: ["sh", "-c", KNOWN_HOSTS_SCRIPT, "shed-known-hosts", file, user.name], user: "root" },
    KNOWN_HOSTS_INPUT,
  );
  if (r.exitCode === 5) return undefined;
  if (r.exitCode !== 0) throw commandFailure(`seeding ${file}`, r.stderr, r.exitCode);
  return Number.parseInt(r.stdout.trim(), 10) || 0;
}

export async function knownHostsNote(guest: GuestExec, warn: Warn, user: GuestUser = SHED_USER): Promise<string> {
  try {
    const added = await seedKnownHosts(guest, user);
    if (added === undefined) return "known_hosts is a live mount, left as is";
    return `known_hosts: ${added} host key${added === 1 ? "" : "s"} added`;
  } catch (err) {
    warn((err as Error).message);
    return "known_hosts not seeded";
  }
}
