import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { tempDir } from "./cli.js";

/** Things on the test host itself: free ports, git repositories, files, processes. */

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}

/** A local git repository with one commit, made with the real git. */
export function makeGitRepo(files: Record<string, string>): string {
  const dir = tempDir("repo");
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", dir, "-c", "user.name=Shed Test", "-c", "user.email=test@shed.invalid", ...args], {
      stdio: "pipe",
    });
  git("init", "-q", "-b", "main");
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  git("add", "-A");
  git("commit", "-q", "-m", "initial commit");
  return dir;
}

/** Every file under `dir` that contains `needle`, read as text (binary files too: a secret in them still shows). */
export function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const file = join(dir, rel);
    // A file removed between the listing and the look (a rotated log, a temporary file) holds nothing.
    if (!statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
    if (readFileSync(file, "latin1").includes(needle)) hits.push(file);
  }
  return hits;
}

function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** Stops a background process by pid and waits until it is gone (a zombie counts as gone). */
export async function stopProcess(pid: number): Promise<void> {
  const alive = () => {
    const state = processState(pid);
    return state !== undefined && state !== "Z";
  };
  if (!alive()) return;
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (alive()) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
