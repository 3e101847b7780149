import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * Who listens on a TCP port, read from /proc (Linux): the socket inodes in LISTEN state on that
 * port (/proc/net/tcp and tcp6), and the processes whose open files include one of them. Only this
 * user's processes can be looked into (root sees all); a port held by someone else's process is
 * then known to be taken, without a pid.
 */
const LISTEN = "0A";

export function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const f = line.trim().split(/\s+/);
      const local = f[1];
      const inode = f[9];
      if (!local || !inode || f[3] !== LISTEN) continue;
      if (local.slice(local.lastIndexOf(":") + 1) === hexPort && inode !== "0") inodes.add(inode);
    }
  }
  return inodes;
}

/** Whether process `pid` has one of the sockets open. */
export function holdsSocket(pid: number, inodes: Set<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] && inodes.has(m[1])) return true;
    } catch {
      // closed since the listing
    }
  }
  return false;
}

/** The first process (pid and command name) found holding one of the sockets, if any can be seen. */
export function socketOwner(inodes: Set<string>): { pid: number; command: string } | undefined {
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const p of pids) {
    const pid = Number(p);
    if (!holdsSocket(pid, inodes)) continue;
    let command = "?";
    try {
      command = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
      // exited since
    }
    return { pid, command };
  }
  return undefined;
}
