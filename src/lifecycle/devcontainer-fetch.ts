import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ShedError } from "../core/errors.js";
import { redactText } from "../core/redact.js";
import { credentialSecrets, type RepoRemote } from "../core/repo-url.js";

/**
 * The repository's files on the server's host, before the shed exists (issue
 * 13): devcontainer.json of a `--repo URL` is read here, and its build context
 * comes from here. A shallow clone (`--depth 1`). A token reaches git only
 * through a credential store in a private temporary folder, written by `git
 * credential-store` from stdin, as in the shed (guest/git-credentials.ts):
 * never argv, never the environment, and git's output is redacted before it
 * is shown.
 */
export interface HostCheckout {
  dir: string;
  cleanup(): void;
}

export async function shallowCloneOnHost(remote: RepoRemote, signal: AbortSignal): Promise<HostCheckout> {
  const base = mkdtempSync(join(tmpdir(), "shed-devcontainer-"));
  const cleanup = () => rmSync(base, { recursive: true, force: true });
  const secrets = remote.credentials ? credentialSecrets(remote.credentials) : [];
  try {
    const store = join(base, "credentials");
    const config = ["-c", "credential.helper=", "-c", "credential.useHttpPath=true"];
    if (remote.credentials) {
      const { username, password } = remote.credentials;
      await git(
        ["credential-store", "--file", store, "store"],
        signal,
        secrets,
        `url=${remote.url}\nusername=${username}\npassword=${password}\n\n`,
      );
      config.push("-c", `credential.helper=store --file ${store}`);
    }
    const dir = join(base, "repo");
    // Only network transports: a URL the API was given must not make this host's own files (a path, file://,
    // ext::) the checkout whose devcontainer.json runs and whose build context is sent to the engine.
    const clone = (shallow: string[]) =>
      git([...config, "clone", "--quiet", ...shallow, "--no-tags", "--", remote.url, dir], signal, secrets, undefined, {
        GIT_ALLOW_PROTOCOL: "http:https:ssh:git",
      });
    await clone(["--depth", "1"]).catch((err: Error) => {
      // git's dumb HTTP transport (and some servers) cannot do a shallow fetch: fetch it whole.
      if (!/shallow/i.test(err.message)) throw err;
      rmSync(dir, { recursive: true, force: true });
      return clone([]);
    });
    rmSync(store, { force: true });
    return { dir, cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/** The uploaded bundle of a local checkout, cloned into a temporary folder on this host (a build's context). */
export async function bundleCheckout(bundle: string, signal: AbortSignal): Promise<HostCheckout> {
  const base = mkdtempSync(join(tmpdir(), "shed-devcontainer-"));
  const cleanup = () => rmSync(base, { recursive: true, force: true });
  try {
    await git(["clone", "--quiet", "--", bundle, join(base, "repo")], signal, []);
    return { dir: join(base, "repo"), cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

function git(
  args: string[],
  signal: AbortSignal,
  secrets: string[],
  input?: string,
  extraEnv: Record<string, string> = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, {
      stdio: ["pipe", "ignore", "pipe"],
      signal,
      // No prompt on the server's terminal (the store sits in a folder only this user can read: mkdtemp, 0700).
      env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "true", SSH_ASKPASS: "true", ...extraEnv },
    });
    let err = "";
    child.stderr.on("data", (b: Buffer) => {
      err = (err + b.toString()).slice(-4000);
    });
    child.stdin.end(input ?? "");
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) return resolve();
      const why = redactText(err.trim(), secrets).split("\n").slice(-3).join(" ");
      reject(
        new ShedError(
          "CLONE_FAILED",
          `could not fetch the repository on the server to read devcontainer.json: ${why || `git exit ${code}`}`,
          {
            hint: "check the URL and its credentials (SHED_REPO_TOKEN); or create from a local checkout",
          },
        ),
      );
    });
  });
}
