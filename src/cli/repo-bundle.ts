import { spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { ShedError } from "../core/errors.js";
import type { ApiClient } from "./api-client.js";

/** `--repo` is a local path when it names an existing directory (or looks like a path). */
export function isLocalRepo(repo: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s]+:/.test(repo)) return false;
  return repo.startsWith("/") || repo.startsWith(".") || repo.startsWith("~") || existsSync(repo);
}

export interface BundleUpload {
  id: string;
  label: string;
  origin?: string;
  /** Said to the user: uncommitted changes are not in the bundle. */
  notes: string[];
}

/**
 * Sends a local checkout to the server as a git bundle (all branches and tags),
 * streamed from `git bundle create` straight into the upload; the shed clones
 * from it. Works the same when the server is on another machine.
 */
export async function uploadLocalRepo(api: ApiClient, repo: string): Promise<BundleUpload> {
  const dir = resolve(repo.startsWith("~") ? repo.replace(/^~/, homedir()) : repo);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ShedError("INVALID_REQUEST", `--repo ${repo}: no such directory`, {
      hint: "give a git URL, or the path of a local git checkout",
    });
  }
  const top = git(dir, ["rev-parse", "--show-toplevel"]);
  if (top.status !== 0) {
    throw new ShedError("INVALID_REQUEST", `--repo ${repo}: ${dir} is not a git repository`, {
      hint: "run `git init` and commit, or use --local-dir to mount a plain directory",
    });
  }
  if (git(dir, ["rev-parse", "--verify", "HEAD"]).status !== 0) {
    throw new ShedError("INVALID_REQUEST", `--repo ${repo}: the repository has no commits yet`, {
      hint: "commit something first, or use --local-dir",
    });
  }
  const notes: string[] = [];
  if (git(dir, ["status", "--porcelain"]).stdout.trim() !== "") {
    notes.push(`uncommitted changes in ${dir} are not copied (only commits are)`);
  }
  const originRes = git(dir, ["remote", "get-url", "origin"]);
  const origin = originRes.status === 0 ? originRes.stdout.trim() : undefined;

  const child = spawn("git", ["-C", dir, "bundle", "create", "--quiet", "-", "--all"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => {
    stderr += t;
  });
  const exited = new Promise<number>((r) => child.on("close", (code) => r(code ?? 1)));
  const { id } = await api.upload("/api/bundles", Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>);
  if ((await exited) !== 0) {
    throw new ShedError("INVALID_REQUEST", `git bundle of ${dir} failed: ${stderr.trim()}`);
  }
  return { id, label: top.stdout.trim(), ...(origin ? { origin } : {}), notes };
}

function git(dir: string, args: string[]): { status: number; stdout: string } {
  const r = spawnSync("git", ["-C", dir, ...args], { encoding: "utf8" });
  return { status: r.status ?? 1, stdout: r.stdout ?? "" };
}
