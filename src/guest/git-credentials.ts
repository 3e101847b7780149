import { ShedError } from "../core/errors.js";
import { redactText } from "../core/redact.js";
import { credentialSecrets, type RepoCredentials } from "../core/repo-url.js";
import { type GuestExec, runCollect } from "./exec.js";
import type { GuestUser } from "./guest-user.js";

/**
 * A repository token reaches git only through git's credential store, never
 * through a URL or an argument: git puts the URL it is given on the command
 * lines of `git clone` and `git-remote-https`, and `-c` values travel in argv
 * and in GIT_CONFIG_PARAMETERS. The store is written by `git credential-store`
 * reading the credential on stdin, as the shed's user (shed, or the remoteUser).
 *
 * - Its own file, in ~/.config/shed, a directory only that user can enter
 *   (/home/shed is world-readable): not ~/.git-credentials, which a global `credential.helper
 *   store` (a synced ~/.gitconfig) would offer to every repository, and which
 *   may be a credential live-mounted from the host.
 * - Only the clone uses it: its own config names this file after an empty
 *   helper, which empties the list, so no global helper (a keychain, the
 *   default store) is handed the token when git approves it.
 * - credential.useHttpPath: the stored entry carries the repository's path
 *   and the clone asks with its path, so the token is offered to this
 *   repository only, not to another remote on the same host (a fork, another
 *   project) that someone adds to the checkout.
 */
/** The store's folder and file under the shed's user's home (/home/shed/.config/shed for user shed). */
export function gitCredentialsDir(user: GuestUser): string {
  return `${user.home.replace(/\/+$/, "")}/.config/shed`;
}

export function gitCredentialsFile(user: GuestUser): string {
  return `${gitCredentialsDir(user)}/git-credentials`;
}

/** The clone's credential config (`git clone --config` and `git config --add` both take these in order). */
function credentialConfig(user: GuestUser): [string, string][] {
  return [
    ["credential.helper", ""],
    ["credential.helper", `store --file ${gitCredentialsFile(user)}`],
    ["credential.useHttpPath", "true"],
  ];
}

/** $1 directory, $2 file, $3 store|erase; the credential on stdin. umask 077 makes both private to shed. */
const STORE_SCRIPT = `set -eu
umask 077
mkdir -p -- "$1"
chmod 700 -- "$1"
git credential-store --file "$2" "$3"
if [ -e "$2" ]; then chmod 600 -- "$2"; fi`;

/** $1 repository; then key value pairs, added in order. */
const CONFIG_SCRIPT = `set -eu
repo=$1
shift
while [ "$#" -ge 2 ]; do git -C "$repo" config --add -- "$1" "$2"; shift 2; done`;

/** Stores (or erases) the credential for `url` (which has none in it) in the shed's git credential store. */
export async function storeGitCredentials(
  guest: GuestExec,
  user: GuestUser,
  url: string,
  credentials: RepoCredentials,
  action: "store" | "erase" = "store",
): Promise<void> {
  // `url=` first: git parses it into protocol, host and path, and the lines after it add to that.
  const input = `url=${url}\nusername=${credentials.username}\npassword=${credentials.password}\n\n`;
  const r = await runCollect(
    guest,
    {
      argv: [
        "bash",
        "-c",
        STORE_SCRIPT,
        "shed-git-credentials",
        gitCredentialsDir(user),
        gitCredentialsFile(user),
        action,
      ],
      env: { GIT_TERMINAL_PROMPT: "0" },
      user: user.name,
    },
    input,
  );
  if (r.exitCode !== 0) {
    const why = redactText(r.stderr.trim(), credentialSecrets(credentials)).split("\n").slice(-2).join(" ");
    throw new ShedError(
      "CLONE_FAILED",
      `could not ${action === "store" ? "store" : "remove"} the repository's credentials in ${gitCredentialsFile(user)} (exit ${r.exitCode})${why ? `: ${why}` : ""}`,
      { hint: `${gitCredentialsDir(user)} must be a directory user ${user.name} can write` },
    );
  }
}

/** `--config` arguments for `git clone` (none are secret). */
export function cloneConfigArgs(user: GuestUser): string[] {
  return credentialConfig(user).flatMap(([key, value]) => ["--config", `${key}=${value}`]);
}

/** Points an existing checkout at the stored credentials (for a clone that did not get them at `git clone`). */
export async function useStoredCredentials(guest: GuestExec, user: GuestUser, repo: string): Promise<void> {
  const r = await runCollect(guest, {
    argv: ["bash", "-c", CONFIG_SCRIPT, "shed-git-config", repo, ...credentialConfig(user).flat()],
    user: user.name,
  });
  if (r.exitCode !== 0) {
    throw new ShedError(
      "CLONE_FAILED",
      `could not set the credential helper in ${repo}/.git/config: ${r.stderr.trim()}`,
    );
  }
}
