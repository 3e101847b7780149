import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Whether a process with this pid runs (a zombie nobody has reaped yet does not count). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // No /proc (macOS): kill -0 is all there is.
  }
}

/** A process's command line (NUL-separated argv on Linux, ps's text elsewhere); undefined when it is gone. */
export function processCommand(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    const ps = spawnSync("ps", ["-p", String(pid), "-o", "command="], { encoding: "utf8" });
    return ps.status === 0 && ps.stdout.trim() ? ps.stdout.trim() : undefined;
  }
}

/**
 * Whether 127.0.0.1:port is free, held (something listens there) or denied
 * (a privileged port), told by trying to listen there ourselves: unlike a
 * connect, it opens no forward through a tunnel's ssh (which would reach into
 * the shed) and needs nothing to answer.
 */
export function portStatus(port: number): Promise<"free" | "held" | "denied"> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") resolve("held");
      else if (err.code === "EACCES") resolve("denied");
      else reject(err);
    });
    probe.listen({ host: "127.0.0.1", port, exclusive: true }, () => probe.close(() => resolve("free")));
  });
}

/** Polls `check` until it is true, or `deadlineMs` has passed (then false). */
export async function pollUntil(check: () => Promise<boolean> | boolean, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Ends a process with SIGTERM, SIGKILL after a grace period; resolves once it is gone. */
export async function endProcess(pid: number): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  if (await pollUntil(() => !pidAlive(pid), 5_000)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  await pollUntil(() => !pidAlive(pid), 5_000);
}
