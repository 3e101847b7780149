import { mkdirSync, rmSync, statSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { ShedError } from "../core/errors.js";

/**
 * One shed-server per data_dir: two would each reconcile, recover and write
 * the same records (a service manager and the CLI's on-demand start can both
 * start one).
 *
 * The lock is a listening Unix socket. On Linux it lives in the abstract
 * namespace, named by the data_dir's device and inode: the kernel frees the
 * name the moment its holder dies, SIGKILL included, so there is never a stale
 * lock to judge and no window in which two starters both decide one is stale
 * (which a pid file, or a socket file that has to be unlinked, always has).
 * Elsewhere (macOS) a socket file in data_dir is the lock; one that nobody
 * answers on is stale and is replaced. The holder answers each connection with
 * its pid, so a refused server can say which process to stop.
 */
export interface DataDirLock {
  release(): Promise<void>;
}

export interface Holder {
  pid?: number;
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const address = lockAddress(dataDir);
  const server = createServer((socket) => {
    socket.on("error", () => {});
    socket.end(`${JSON.stringify({ pid: process.pid })}\n`);
  });
  // The lock must not keep a process alive on its own (an embedding that closed everything else).
  server.unref();
  for (let attempt = 0; ; attempt++) {
    const err = await listen(server, address);
    if (!err) break;
    if (err.code !== "EADDRINUSE") {
      throw new ShedError("INVALID_CONFIG", `cannot lock data_dir ${dataDir}: ${err.code ?? err.message}`, {
        hint: "data_dir must be a directory this user can write on a local filesystem",
      });
    }
    const holder = await ask(address);
    if (holder) throw inUse(dataDir, holder);
    // A socket file nobody answers on was left by a server that died (file fallback only).
    if (address.startsWith("\0") || attempt > 0) throw inUse(dataDir, {});
    rmSync(address, { force: true });
  }
  return {
    release: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

/**
 * Who holds the lock of `dataDir` now, without taking it: the running server's pid (when it said),
 * or undefined when no server uses that data_dir (or it does not exist yet). `shed-server doctor`
 * uses it to tell this server's own ports from a stranger's.
 */
export async function dataDirHolder(dataDir: string): Promise<Holder | undefined> {
  let address: string;
  try {
    address = lockAddress(dataDir);
  } catch {
    return undefined;
  }
  return ask(address);
}

function lockAddress(dataDir: string): string {
  if (process.platform === "linux") {
    const st = statSync(dataDir, { bigint: true });
    return `\0shed-server-data-dir:${st.dev}:${st.ino}`;
  }
  return join(dataDir, "server.lock.sock");
}

function listen(server: Server, address: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => resolve(err);
    server.once("error", onError);
    server.listen(address, () => {
      server.off("error", onError);
      resolve(undefined);
    });
  });
}

/** The holder's answer, or undefined when nobody is listening. */
function ask(address: string): Promise<Holder | undefined> {
  return new Promise((resolve) => {
    const socket = connect(address);
    let text = "";
    const timer = setTimeout(() => socket.destroy(), 2000);
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      text += d;
    });
    socket.on("error", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    socket.on("close", (hadError) => {
      clearTimeout(timer);
      if (hadError) return;
      try {
        const parsed = JSON.parse(text) as Holder;
        resolve(typeof parsed.pid === "number" ? { pid: parsed.pid } : {});
      } catch {
        // Someone holds it (the connect worked) but did not say who.
        resolve({});
      }
    });
  });
}

function inUse(dataDir: string, holder: Holder): ShedError {
  const who = holder.pid ? `another shed-server (pid ${holder.pid})` : "another shed-server";
  return new ShedError("DATA_DIR_IN_USE", `data_dir ${dataDir} is in use by ${who}`, {
    hint: holder.pid
      ? `only one shed-server may use a data_dir: stop that one first (kill ${holder.pid}), or give this one another data_dir in its config`
      : "only one shed-server may use a data_dir: stop the other one first, or give this one another data_dir in its config",
    ...(holder.pid ? { details: { pid: holder.pid } } : {}),
  });
}
