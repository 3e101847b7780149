import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { ShedError } from "../core/errors.js";
import { redactText } from "../core/redact.js";
import { credentialSecrets, displayRemote, type RepoRemote } from "../core/repo-url.js";
import { WORKSPACE } from "../core/types.js";
import { type GuestExec, runCollect } from "./exec.js";
import { cloneConfigArgs, storeGitCredentials, useStoredCredentials } from "./git-credentials.js";
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

/** Seed create step 5: git clone into /workspace as user shed. */
export async function cloneRepo(
  guest: GuestExec,
  source: RepoSource,
  env: Record<string, string>,
  io: CloneIO,
): Promise<CloneOutcome> {
  const probe = await runCollect(guest, {
    argv: ["find", WORKSPACE, "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"],
  });
  if (probe.exitCode === 0 && probe.stdout.trim() !== "") {
    return {
      cloned: false,
      reason: "the workspace already has files (kept from an earlier shed); not cloned over them",
    };
  }
  const cloneEnv = { ...env, GIT_TERMINAL_PROMPT: "0", GIT_SSH_COMMAND: "ssh -o BatchMode=yes" };

  if (source.kind === "url") {
    // The URL has no credentials, so it may be an argument; the token is in the store, read by git's helper.
    const { credentials } = source;
    const shown = displayRemote(source);
    if (credentials) await storeGitCredentials(guest, source.url, credentials);
    try {
      await runGit(
        guest,
        ["git", "clone", "--progress", ...(credentials ? cloneConfigArgs() : []), "--", source.url, WORKSPACE],
        cloneEnv,
        io,
        { what: `git clone ${shown}`, secrets: credentialSecrets(credentials) },
      );
    } catch (err) {
      // No checkout uses the token: it does not stay behind in the shed.
      if (credentials) await storeGitCredentials(guest, source.url, credentials, "erase").catch(() => {});
      throw err;
    }
    return { cloned: true, message: `cloned ${shown}` };
  }

  await uploadFile(guest, source.file, BUNDLE_IN_GUEST);
  try {
    await runGit(guest, ["git", "clone", "--progress", "--", BUNDLE_IN_GUEST, WORKSPACE], cloneEnv, io, {
      what: `git clone of ${source.label}`,
      secrets: [],
    });
    const { origin } = source;
    const remote = origin
      ? ["git", "-C", WORKSPACE, "remote", "set-url", "origin", origin.url]
      : ["git", "-C", WORKSPACE, "remote", "remove", "origin"];
    await runCollect(guest, { argv: remote, env: cloneEnv });
    // The local checkout's origin had a token: it goes to the store like a cloned URL's, so pull works as it did there.
    if (origin?.credentials) {
      await storeGitCredentials(guest, origin.url, origin.credentials);
      await useStoredCredentials(guest, WORKSPACE);
    }
  } finally {
    await runCollect(guest, { argv: ["rm", "-f", BUNDLE_IN_GUEST], user: "root" }).catch(() => {});
  }
  return { cloned: true, message: `cloned ${source.label}` };
}

async function runGit(
  guest: GuestExec,
  argv: string[],
  env: Record<string, string>,
  io: CloneIO,
  what: { what: string; secrets: string[] },
): Promise<void> {
  const proc = await guest.exec({ argv, env, cwd: "/" });
  const tail = new TailBuffer();
  const onAbort = () => void proc.signal("SIGKILL");
  io.signal.addEventListener("abort", onAbort, { once: true });
  const outDone = forwardText(proc.stdout, (t) => io.output("stdout", redactText(t, what.secrets)));
  const errDone = forwardText(proc.stderr, (t) => {
    const clean = redactText(t, what.secrets);
    tail.push(clean);
    io.output("stderr", clean);
  });
  const code = await proc.exited;
  await Promise.all([outDone, errDone]);
  io.signal.removeEventListener("abort", onAbort);
  if (io.signal.aborted) {
    throw new ShedError("TIMEOUT", `${what.what} did not finish within the create time limit`);
  }
  if (code !== 0) {
    const last = tail.lines(3).join(" | ");
    throw new ShedError("CLONE_FAILED", `${what.what} failed (exit ${code})${last ? `: ${last}` : ""}`, {
      hint: "the shed is up without the code; check the URL and credentials, then clone by hand in `shed console`",
    });
  }
}

/** Streams a host file into the guest through exec's stdin (works on every backend). */
async function uploadFile(guest: GuestExec, hostFile: string, guestPath: string): Promise<void> {
  const proc = await guest.exec({
    argv: ["bash", "-c", 'cat > "$1"', "shed-upload", guestPath],
    stdin: true,
  });
  proc.stdout.resume();
  const tail = new TailBuffer();
  proc.stderr.setEncoding("utf8").on("data", (t: string) => tail.push(t));
  if (!proc.stdin) throw new Error("exec without stdin");
  await pipeline(createReadStream(hostFile), proc.stdin);
  const code = await proc.exited;
  if (code !== 0) {
    throw new ShedError(
      "CLONE_FAILED",
      `could not copy the repository bundle into the shed: ${tail.lines(2).join(" ")}`,
    );
  }
}
