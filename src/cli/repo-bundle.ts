import { spawn, spawnSync } from "node:child_process";
import { existsSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { relative, resolve } from "node:path";
import { Readable } from "node:stream";
import { ShedError } from "../core/errors.js";
import type { ApiClient } from "./api-client.js";

/** `--repo` is a local path when it names an existing directory (or looks like a path). */
export function isLocalRepo(repo: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s]+:/.test(repo)) return false;
  return repo.startsWith("/") || repo.startsWith(".") || repo.startsWith("~") || existsSync(repo);
}

/** A local checkout, checked and ready to be sent. */
export interface LocalRepo {
  /** The checkout's top directory: what is bundled (the whole repository). */
  top: string;
  origin?: string;
  /** Said to the user: uncommitted changes are not in the bundle. */
  notes: string[];
}

export interface BundleUpload {
  id: string;
  label: string;
  origin?: string;
  notes: string[];
}

/**
 * Checks a `--repo` path before anything is made: it must be the top of a git
 * checkout with at least one commit. A directory inside a checkout is refused
 * rather than guessed at: copying the whole repository would bring another
 * provision.yaml than the one the user may have meant, and copying only the
 * directory is what --local-dir is for.
 */
export function inspectLocalRepo(repo: string): LocalRepo {
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
  const topDir = top.stdout.trim();
  if (realpathSync(dir) !== realpathSync(topDir)) {
    throw new ShedError(
      "INVALID_REQUEST",
      `--repo ${repo}: ${dir} is inside the git checkout ${topDir} (at ${relative(topDir, realpathSync(dir))}), not at its top`,
      {
        hint: `pass the repository's top, --repo ${topDir}: the whole repository is copied, and its own .shed/provision.yaml is used; or --local-dir ${repo} for just that directory`,
        details: { top: topDir },
      },
    );
  }
  if (git(topDir, ["rev-parse", "--verify", "HEAD"]).status !== 0) {
    throw new ShedError("INVALID_REQUEST", `--repo ${repo}: the repository has no commits yet`, {
      hint: "commit something first, or use --local-dir",
    });
  }
  const notes: string[] = [];
  if (git(topDir, ["status", "--porcelain"]).stdout.trim() !== "") {
    notes.push(`uncommitted changes in ${topDir} are not copied (only commits are)`);
  }
  const originRes = git(topDir, ["remote", "get-url", "origin"]);
  const origin = originRes.status === 0 ? originRes.stdout.trim() : undefined;
  return { top: topDir, ...(origin ? { origin } : {}), notes };
}

/** What every git bundle starts with (v3 adds capabilities after it). */
const BUNDLE_SIGNATURE = /^# v[23] git bundle\n/;
const SIGNATURE_LENGTH = 16;

/**
 * Sends a checked local checkout to the server as a git bundle (all branches
 * and tags), streamed from `git bundle create` straight into the upload; the
 * shed clones from it. Works the same when the server is on another machine.
 *
 * git runs at the checkout's top and writes the bundle to its stdout (`-`),
 * never to a file: inside a subdirectory, older git versions take `-` for a
 * file name there. Nothing is uploaded until the output starts as a bundle,
 * and a git that fails stops the command before the shed is created.
 */
export async function uploadLocalRepo(api: ApiClient, local: LocalRepo): Promise<BundleUpload> {
  const child = spawn("git", ["bundle", "create", "--quiet", "-", "--all"], {
    cwd: local.top,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => {
    stderr += t;
  });
  const exited = new Promise<number>((r) => child.on("close", (code) => r(code ?? 1)));
  const failed = (what: string) =>
    new ShedError("INVALID_REQUEST", `git bundle of ${local.top} ${what}${stderr.trim() ? `: ${stderr.trim()}` : ""}`, {
      hint: "check that `git bundle create /tmp/x.bundle --all` works in that checkout; nothing was created",
    });
  const head = await readHead(child.stdout, SIGNATURE_LENGTH);
  if (!BUNDLE_SIGNATURE.test(head.toString("latin1"))) {
    child.kill();
    const code = await exited;
    throw failed(head.length === 0 ? `wrote nothing (exit ${code})` : "did not write a git bundle");
  }
  const body = Readable.from(
    (async function* () {
      yield head;
      yield* child.stdout;
    })(),
  );
  const { id } = await api.upload("/api/bundles", Readable.toWeb(body) as ReadableStream<Uint8Array>);
  const code = await exited;
  if (code !== 0) throw failed(`failed (exit ${code})`);
  return { id, label: local.top, ...(local.origin ? { origin: local.origin } : {}), notes: local.notes };
}

/** The first `n` bytes of a stream (fewer if it ends first); the stream is left paused just after them. */
function readHead(stream: Readable, n: number): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = () => {
      stream.off("data", onData);
      stream.off("end", done);
      stream.off("error", reject);
      stream.pause();
      resolvePromise(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= n) done();
    };
    stream.on("data", onData);
    stream.on("end", done);
    stream.on("error", reject);
  });
}

function git(dir: string, args: string[]): { status: number; stdout: string } {
  const r = spawnSync("git", ["-C", dir, ...args], { encoding: "utf8" });
  return { status: r.status ?? 1, stdout: r.stdout ?? "" };
}
