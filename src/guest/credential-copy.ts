import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { basename, dirname } from "node:path";
import type { CredentialConfig } from "../config/server-config.js";
import { ShedError } from "../core/errors.js";
import type { Warn } from "../core/events.js";
import { GUEST_USER } from "../core/types.js";
import { commandFailure, type GuestExec } from "./exec.js";
import { knownHostsNote } from "./known-hosts-seed.js";

/**
 * Credentials as tar through a guest's exec (the seed's tar-over-vsock: on a
 * VM the exec is the agent's). The host packs the source with GNU tar, so an
 * `exclude` pattern means what it means on Docker and an excluded file never
 * leaves the host; the guest unpacks it as root at the target, owned by user
 * shed, keeping modes; `readonly` takes every w bit off. Made at create and
 * again on every start.
 *
 * Paths and patterns travel as argv and positional parameters; messages name
 * credentials and paths, never file contents.
 */

/** $1 target, $2 "dir" or "file", $3 "1" for readonly, $4 the file's name in the archive, $5 the owner. */
const UNPACK_SCRIPT = `set -eu -o pipefail
dst=$1 kind=$2 ro=$3 member=$4 owner=$5
mkparents() {
  [ -e "$1" ] && return 0
  mkparents "$(dirname -- "$1")"
  mkdir -- "$1"
  chown "$owner:$owner" -- "$1"
}
mkparents "$(dirname -- "$dst")"
if [ "$kind" = dir ]; then
  if [ -e "$dst" ] && [ ! -d "$dst" ]; then echo "$dst exists and is not a directory" >&2; exit 1; fi
  mkdir -p -- "$dst"
  tar -C "$dst" --no-same-owner -xpf -
  chown -R "$owner:$owner" -- "$dst"
  if [ "$ro" = 1 ]; then chmod -R a-w -- "$dst"; fi
else
  if [ -d "$dst" ]; then echo "$dst is a directory but the source is a file" >&2; exit 1; fi
  tmp=$(mktemp -d "$(dirname -- "$dst")/.shed-credential.XXXXXX")
  trap 'rm -rf -- "$tmp"' EXIT
  tar -C "$tmp" --no-same-owner -xpf -
  chown "$owner:$owner" -- "$tmp/$member"
  # Read-only before it is in place: the target never shows the new content with write bits.
  if [ "$ro" = 1 ]; then chmod a-w -- "$tmp/$member"; fi
  mv -f -- "$tmp/$member" "$dst"
fi`;

/**
 * The host tar's argv for one credential: a directory's contents (members
 * named `./rel/path`), or the one file. Live sync packs through here too, so
 * `exclude` means the same thing in both; `members` narrows a directory to
 * those entries (`./rel/path` each).
 */
export function packArgv(c: CredentialConfig, isDir: boolean, members?: readonly string[]): string[] {
  const common = ["--numeric-owner", "--owner=0", "--group=0"];
  const excludes = c.exclude.map((p) => `--exclude=${p}`);
  if (isDir && members) return ["-C", c.source, ...common, ...excludes, "--no-recursion", "-cf", "-", "--", ...members];
  if (isDir) return ["-C", c.source, ...common, ...excludes, "-cf", "-", "."];
  return ["-C", dirname(c.source), ...common, "-cf", "-", "--", basename(c.source)];
}

export interface CopyInOptions {
  /** Only these entries of a directory credential (`./rel/path`), for live sync; default all. */
  members?: readonly string[];
  /** The guest user that owns what arrives (default shed). */
  owner?: string;
}

/** Copies one credential into the guest; throws BACKEND_ERROR naming it when either side fails. */
export async function copyCredentialIn(guest: GuestExec, c: CredentialConfig, opts: CopyInOptions = {}): Promise<void> {
  let isDir: boolean;
  try {
    isDir = statSync(c.source).isDirectory();
  } catch {
    throw new ShedError(
      "BACKEND_ERROR",
      `credential ${c.name}: source ${c.source} does not exist; not copied to ${c.target}`,
      { hint: `create ${c.source} on the server or remove credentials.${c.name} from its config` },
    );
  }
  const proc = await guest.exec({
    argv: [
      "bash",
      "-c",
      UNPACK_SCRIPT,
      "shed-credential-in",
      c.target,
      isDir ? "dir" : "file",
      c.readonly ? "1" : "0",
      basename(c.source),
      opts.owner ?? GUEST_USER,
    ],
    user: "root",
    stdin: true,
  });
  const pack = spawn("tar", packArgv(c, isDir, opts.members), { stdio: ["ignore", "pipe", "pipe"] });
  const packErr: Buffer[] = [];
  const guestErr: Buffer[] = [];
  pack.stderr.on("data", (d: Buffer) => packErr.push(d));
  proc.stderr.on("data", (d: Buffer) => guestErr.push(d));
  proc.stdout.resume();
  const packed = new Promise<number>((resolve, reject) => {
    pack.on("error", reject);
    pack.on("close", (code) => resolve(code ?? 1));
  });
  if (proc.stdin) pack.stdout.pipe(proc.stdin);
  // The guest may stop reading early (its tar failed): the host tar then ends on EPIPE, said by the guest's error.
  proc.stdin?.on("error", () => {});
  const [packCode, guestCode] = await Promise.all([packed, proc.exited]);
  if (guestCode !== 0) {
    throw commandFailure(`credential ${c.name}: copy to ${c.target}`, Buffer.concat(guestErr).toString(), guestCode);
  }
  if (packCode !== 0) {
    throw commandFailure(`credential ${c.name}: packing ${c.source}`, Buffer.concat(packErr).toString(), packCode);
  }
}

/** Create step 4 and start step 3 where the guest keeps no mount: every credential copied in, then known_hosts. */
export async function copyCredentialsIn(
  guest: GuestExec,
  credentials: readonly CredentialConfig[],
  warn: Warn,
): Promise<string> {
  let copied = 0;
  for (const c of credentials) {
    try {
      await copyCredentialIn(guest, c);
      copied += 1;
    } catch (err) {
      warn((err as Error).message);
    }
  }
  // A copied credential may have brought its own known_hosts: the Git hosts' keys are merged in again.
  return `${copied} of ${credentials.length} copied as tar; ${await knownHostsNote(guest, warn)}`;
}
