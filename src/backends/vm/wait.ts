import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { connect } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

/** The last `maxLines` lines of a log file (at most its last 16 KiB), for error messages. */
export function tailFile(path: string, maxLines = 20): string {
  let fd: number | undefined;
  try {
    const size = statSync(path).size;
    const len = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(len);
    fd = openSync(path, "r");
    readSync(fd, buf, 0, len, size - len);
    return buf
      .toString("utf8")
      .replace(/\r/g, "")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(-maxLines)
      .join("\n");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** True when a TCP listener is bound to 127.0.0.1:port in this network namespace (read from /proc/net/tcp, no connection made). */
export function isLoopbackTcpListening(port: number): boolean {
  let text: string;
  try {
    text = readFileSync("/proc/net/tcp", "utf8");
  } catch {
    return false;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  // Columns: sl local_address rem_address st ...; st 0A is LISTEN.
  return text.split("\n").some((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[1] === local && cols[3] === "0A";
  });
}

/** Connects to a Unix socket, true if it accepted (for QEMU's QMP socket, which takes many clients). */
export function canConnectUnix(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * True when something on 127.0.0.1:port sends at least one byte within `timeoutMs` of connecting.
 * The agent speaks first (its HELLO), while a port forwarder with nothing behind it in the guest
 * accepts and then closes: so this tells "the agent is listening" from "the forward exists".
 */
export function loopbackPortSpeaks(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    const done = (v: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once("data", () => done(true));
    s.once("error", () => done(false));
    s.once("close", () => done(false));
  });
}

/**
 * Polls `ready` until it is true, `failed` returns a reason, or the deadline passes. There is no
 * event to wait on for any of these (another process's socket, a guest's boot), hence the polling.
 */
export async function pollUntil(opts: {
  ready: () => boolean | Promise<boolean>;
  failed?: () => string | undefined;
  timeoutMs: number;
  intervalMs?: number;
}): Promise<{ ok: true } | { ok: false; reason: string }> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const why = opts.failed?.();
    if (why !== undefined) return { ok: false, reason: why };
    if (await opts.ready()) return { ok: true };
    if (Date.now() >= deadline) return { ok: false, reason: "timeout" };
    await delay(opts.intervalMs ?? 100);
  }
}
