import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { ShedError } from "../core/errors.js";
import { redactText } from "../core/redact.js";
import { credentialSecrets, displayRemote, type RepoRemote } from "../core/repo-url.js";
import { WORKSPACE } from "../core/types.js";
import { type GuestExec, runCollect } from "./exec.js";
import { cloneConfigArgs, storeGitCredentials, useStoredCredentials } from "./git-credentials.js";
import { asUser, type GuestUser } from "./guest-user.js";
import { forwardText, TailBuffer } from "./lines.js";

/** Where the workspace's code comes from. */
export type RepoSource =
  /** A remote to clone; its URL has no credentials in it (src/core/repo-url.ts took them out). */
  | ({ kind: "url" } & RepoRemote)
  /** A git bundle the CLI uploaded from a local checkout; `origin` is that checkout's own remote, if any. */
  | { kind: "bundle"; file: string; origin?: RepoRemote; label: string };

export interface CloneIO {
  output(stream: "stdout" | "stderr", text: string): void;
  signal: AbortSignal;
}

export type CloneOutcome = { cloned: true; message: string } | { cloned: false; reason: string };

const BUNDLE_IN_GUEST = "/tmp/shed-repo.bundle";

/** Exit codes of CLONE_SCRIPT that are not git's (git exits 1, 128 or 129). */
const NOT_EMPTY = 90;
const COPY_FAILED = 91;

/**
 * Seed create step 5 in one exec (each exec is a round trip): $1 workspace,
 * $2 what to clone, $3 the bundle's path when a bundle arrives on stdin
 * (empty for a URL), $4 "set" to point origin at $5 afterwards, "remove" to
 * drop the bundle's origin; then `git clone` options. A workspace with files
 * (kept from an earlier shed) is never cloned over: exit 90, the bundle read
 * and dropped. The bundle is removed when the script ends.
 */
const CLONE_SCRIPT = `set -u
ws=$1 src=$2 bundle=$3 origin_action=$4 origin=$5
shift 5
if [ -n "$(find "$ws" -mindepth 1 -maxdepth 1 -print -quit 2>/dev/null)" ]; then
  if [ -n "$bundle" ]; then cat >/dev/null; fi
  exit ${NOT_EMPTY}
fi
if [ -n "$bundle" ]; then
  trap 'rm -f -- "$bundle"' EXIT
  cat >"$bundle" || { echo "shed: could not write $bundle" >&2; exit ${COPY_FAILED}; }
fi
git clone --progress "$@" -- "$src" "$ws" || exit
case $origin_action in
  set) git -C "$ws" remote set-url origin "$origin" ;;
  remove) git -C "$ws" remote remove origin ;;
esac
exit 0`;

const KEPT_FILES = "the workspace already has files (kept from an earlier shed); not cloned over them";

/** Seed create step 5: git clone into /workspace as the shed's user (shed, or the remoteUser). */
export async function cloneRepo(
  guest: GuestExec,
  user: GuestUser,
  source: RepoSource,
  env: Record<string, string>,
  io: CloneIO,
): Promise<CloneOutcome> {
  const cloneEnv = { ...env, GIT_TERMINAL_PROMPT: "0", GIT_SSH_COMMAND: "ssh -o BatchMode=yes" };
  guest = asUser(guest, user);

  if (source.kind === "url") {
    // The URL has no credentials, so it may be an argument; the token is in the store, read by git's helper.
    const { credentials } = source;
    const shown = displayRemote(source);
    if (credentials) await storeGitCredentials(guest, user, source.url, credentials);
    let cloned = false;
    try {
      cloned = await runClone(
        guest,
        [source.url, "", "keep", "", ...(credentials ? cloneConfigArgs(user) : [])],
        undefined,
        cloneEnv,
        io,
        { what: `git clone ${shown}`, secrets: credentialSecrets(credentials) },
      );
    } finally {
      // No checkout uses the token: it does not stay behind in the shed.
      if (credentials && !cloned)
        await storeGitCredentials(guest, user, source.url, credentials, "erase").catch(() => {});
    }
    return cloned ? { cloned: true, message: `cloned ${shown}` } : { cloned: false, reason: KEPT_FILES };
  }

  const { origin } = source;
  try {
    const cloned = await runClone(
      guest,
      [BUNDLE_IN_GUEST, BUNDLE_IN_GUEST, origin ? "set" : "remove", origin?.url ?? ""],
      source.file,
      cloneEnv,
      io,
      { what: `git clone of ${source.label}`, secrets: [] },
    );
    if (!cloned) return { cloned: false, reason: KEPT_FILES };
    // The local checkout's origin had a token: it goes to the store like a cloned URL's, so pull works as it did there.
    if (origin?.credentials) {
      await storeGitCredentials(guest, user, origin.url, origin.credentials);
      await useStoredCredentials(guest, user, WORKSPACE);
    }
  } catch (err) {
    // The script removes the bundle when it ends, failed or not; one cut off (a timeout) or that could not
    // be started may have left it.
    if (!(err instanceof ShedError && err.code === "CLONE_FAILED")) {
      await runCollect(guest, { argv: ["rm", "-f", BUNDLE_IN_GUEST], user: "root" }).catch(() => {});
    }
    throw err;
  }
  return { cloned: true, message: `cloned ${source.label}` };
}

/**
 * Runs CLONE_SCRIPT with `args` after the workspace ($2 on), streaming a
 * host file to its stdin when given; false when the workspace had files.
 */
async function runClone(
  guest: GuestExec,
  args: string[],
  stdinFile: string | undefined,
  env: Record<string, string>,
  io: CloneIO,
  what: { what: string; secrets: string[] },
): Promise<boolean> {
  const proc = await guest.exec({
    argv: ["bash", "-c", CLONE_SCRIPT, "shed-clone", WORKSPACE, ...args],
    env,
    cwd: "/",
    stdin: stdinFile !== undefined,
  });
  const tail = new TailBuffer();
  const onAbort = () => void proc.signal("SIGKILL");
  io.signal.addEventListener("abort", onAbort, { once: true });
  const outDone = forwardText(proc.stdout, (t) => io.output("stdout", redactText(t, what.secrets)));
  const errDone = forwardText(proc.stderr, (t) => {
    const clean = redactText(t, what.secrets);
    tail.push(clean);
    io.output("stderr", clean);
  });
  // A script that ends before reading all of it (an error) closes its stdin: the exit code says what happened.
  const sent = stdinFile && proc.stdin ? pipeline(createReadStream(stdinFile), proc.stdin).catch(() => {}) : undefined;
  const code = await proc.exited;
  await Promise.all([outDone, errDone, sent]);
  io.signal.removeEventListener("abort", onAbort);
  if (io.signal.aborted) {
    throw new ShedError("TIMEOUT", `${what.what} did not finish within the create time limit`);
  }
  if (code === NOT_EMPTY) return false;
  if (code === COPY_FAILED) {
    throw new ShedError(
      "CLONE_FAILED",
      `could not copy the repository bundle into the shed: ${tail.lines(2).join(" ")}`,
    );
  }
  if (code !== 0) {
    const last = tail.lines(3).join(" | ");
    throw new ShedError("CLONE_FAILED", `${what.what} failed (exit ${code})${last ? `: ${last}` : ""}`, {
      hint: "the shed is up without the code; check the URL and credentials, then clone by hand in `shed console`",
    });
  }
  return true;
}
