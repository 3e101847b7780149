import { accessSync, constants, type Stats, statfsSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { dirname } from "node:path";
import type { ServerConfig } from "../../config/server-config.js";
import type { DoctorCheck } from "../../core/doctor-report.js";
import { formatSize } from "../../core/size.js";
import { dataDirHolder } from "../data-dir-lock.js";
import { holdsSocket, listeningInodes, socketOwner } from "./port-owner.js";

/** The checks every server needs whatever its backends: its ports, its data_dir, free disk. */

const where = (config: ServerConfig) => (config.file ? `in ${config.file}` : "in the server config (--config FILE)");

/** Free, or held by the shed-server that holds this data_dir (a running server checking itself). */
export async function portCheck(
  config: ServerConfig,
  key: "http_port" | "ssh_port",
  port: number,
): Promise<DoctorCheck> {
  const check = `port ${key}`;
  if (port === 0) return { check, status: "ok", detail: "0: the system picks a free port at each start" };
  const err = await tryListen(config.bind, port);
  const at = `${config.bind}:${port}`;
  if (!err) return { check, status: "ok", detail: `${at} is free` };
  if (err === "EADDRINUSE") {
    const holder = await dataDirHolder(config.dataDir);
    const inodes = listeningInodes(port);
    if (holder?.pid !== undefined && holdsSocket(holder.pid, inodes)) {
      return { check, status: "ok", detail: `${at} is held by this server (pid ${holder.pid}, on ${config.dataDir})` };
    }
    const owner = socketOwner(inodes);
    const who = owner ? `pid ${owner.pid} (${owner.command})` : "another program";
    return {
      check,
      status: "fail",
      detail: `${at} is in use by ${who}, not by a shed-server on ${config.dataDir}`,
      hint: `stop ${owner ? `pid ${owner.pid}` : "it"}, or set ${key} to a free port ${where(config)}`,
    };
  }
  if (err === "EACCES") {
    return {
      check,
      status: "fail",
      detail: `${at}: ports below 1024 need root`,
      hint: `set ${key} to 1024 or above ${where(config)}`,
    };
  }
  return {
    check,
    status: "fail",
    detail: `cannot listen on ${at} (${err})`,
    hint: err === "EADDRNOTAVAIL" ? `bind ${config.bind} is not an address of this machine` : `check bind and ${key}`,
  };
}

function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** data_dir: a directory this user owns and can write, that no one else can write (or read: tokens, keys). */
export function dataDirCheck(config: ServerConfig): DoctorCheck {
  const check = "data_dir";
  const dir = config.dataDir;
  const st = statOf(dir);
  if (!st) {
    const parent = nearestExisting(dir);
    if (parent && statOf(parent)?.isDirectory() && writable(parent)) {
      return { check, status: "ok", detail: `${dir} does not exist yet; the server makes it (mode 700) at start` };
    }
    return {
      check,
      status: "fail",
      detail: `${dir} does not exist and cannot be made: ${parent ?? "/"} is ${parent && statOf(parent)?.isDirectory() ? "not writable" : "not a directory"}`,
      hint: `create it (mkdir -m 700 ${dir}) as the server's user, or set data_dir ${where(config)}`,
    };
  }
  if (!st.isDirectory()) {
    return {
      check,
      status: "fail",
      detail: `${dir} is not a directory`,
      hint: `move it away, or set data_dir ${where(config)}`,
    };
  }
  const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid) {
    return {
      check,
      status: "fail",
      detail: `${dir} belongs to uid ${st.uid}, not to this user (uid ${uid})`,
      hint: `chown -R ${uid} ${dir}, or run the server as its owner`,
    };
  }
  if (!writable(dir)) {
    return { check, status: "fail", detail: `${dir} is not writable`, hint: `chmod 700 ${dir}` };
  }
  // The API token, the SSH host key and every shed's record live here.
  if (st.mode & 0o022) {
    return {
      check,
      status: "fail",
      detail: `${dir} is writable by ${st.mode & 0o002 ? "every user" : "its group"} (mode ${mode})`,
      hint: `chmod 700 ${dir}: another user could replace the server's token, keys or shed records`,
    };
  }
  if (st.mode & 0o055) {
    return {
      check,
      status: "warn",
      detail: `${dir} can be listed by other users (mode ${mode})`,
      hint: `chmod 700 ${dir}`,
    };
  }
  return { check, status: "ok", detail: `${dir} is writable, mode ${mode}` };
}

/** The entry at `path`, or undefined when there is none (ENOENT, and ENOTDIR: a file stands in the path). */
function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function nearestExisting(path: string): string | undefined {
  let p = path;
  for (;;) {
    const up = dirname(p);
    if (up === p) return undefined;
    p = up;
    if (statOf(p)) return p;
  }
}

const GiB = 1024 ** 3;

/** Free space where sheds' records, VM disks and bundles go (data_dir's filesystem). */
export function diskCheck(config: ServerConfig): DoctorCheck {
  const check = "disk space";
  const path = statOf(config.dataDir) ? config.dataDir : nearestExisting(config.dataDir);
  if (!path) return { check, status: "warn", detail: `cannot find a filesystem for ${config.dataDir}` };
  const fs = statfsSync(path);
  const free = fs.bavail * fs.bsize;
  const detail = `${formatSize(free)} free on the filesystem of ${path}`;
  if (free < GiB) {
    return {
      check,
      status: "fail",
      detail,
      hint: "free some space: a create copies a workspace, a VM disk or a bundle there",
    };
  }
  if (free < 5 * GiB) return { check, status: "warn", detail, hint: "less than 5 GiB: a VM shed's disk may not fit" };
  return { check, status: "ok", detail };
}
