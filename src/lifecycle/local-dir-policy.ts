import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { CheckedLocalDir } from "../backends/backend.js";
import type { ServerConfig } from "../config/server-config.js";
import { ShedError } from "../core/errors.js";
import { quote } from "../core/quote.js";

/**
 * Which host directories --local-dir may mount. A shed's user has passwordless
 * sudo, so whatever is mounted at /workspace is writable as root from inside:
 * mounting /etc, a home directory or the Docker socket's directory hands the
 * server's machine to whoever can create a shed. Checked on the server, before
 * anything is created, for every backend (the VM backends share directories
 * too), on the real path: symlinks are resolved first, and the real path is
 * what gets mounted, so swapping a symlink after the check changes nothing.
 */

export type { CheckedLocalDir };

export type LocalDirRule =
  | "root"
  | "system_dir"
  | "home_dir"
  | "home_hidden_dir"
  | "server_data_dir"
  | "server_file"
  | "docker_socket"
  | "outside_local_dir_roots";

interface Refusal {
  rule: LocalDirRule;
  reason: string;
  hint: string;
}

/** Top-level directories of the system (and /lib*: lib, lib32, lib64, libx32...), refused with all below them. */
const SYSTEM_DIRS = new Set(["etc", "usr", "bin", "sbin", "boot", "dev", "proc", "sys", "run", "var"]);
const DOCKER_SOCKETS = ["/var/run/docker.sock", "/run/docker.sock"];
const PICK_PROJECT = "mount a project directory instead, e.g. one below your home directory";

export type LocalDirPolicy = Pick<
  ServerConfig,
  "name" | "dataDir" | "localDirRoots" | "file" | "tls" | "envFile" | "authorizedKeysFile"
> &
  Partial<Pick<ServerConfig, "dockerSocket">>;

/** Resolves and checks a --local-dir; throws LOCAL_DIR_NOT_FOUND, LOCAL_DIR_REFUSED or INVALID_REQUEST. */
export function checkLocalDir(
  requested: string,
  config: LocalDirPolicy,
  env: NodeJS.ProcessEnv = process.env,
): CheckedLocalDir {
  if (!isAbsolute(requested)) {
    throw new ShedError("INVALID_REQUEST", `local_dir ${quote(requested)} must be an absolute path`);
  }
  const notFound = (why: string) =>
    new ShedError("LOCAL_DIR_NOT_FOUND", `--local-dir ${shownPath(requested)} ${why} on server ${config.name}`, {
      hint: "create the directory, or check the path (it is resolved on the server's machine)",
    });
  let path: string;
  try {
    path = realpathSync(requested);
  } catch {
    throw notFound("is not a directory");
  }
  const st = statSync(path, { bigint: true });
  if (!st.isDirectory()) throw notFound("is not a directory");

  const refusal = builtInRefusal(path, config, env) ?? rootsRefusal(path, config);
  if (refusal) {
    const shown = path === requested ? shownPath(requested) : `${shownPath(requested)} (real path ${path})`;
    throw new ShedError("LOCAL_DIR_REFUSED", `--local-dir ${shown} is refused: ${refusal.reason}`, {
      hint: refusal.hint,
      details: { path: shownPath(requested), real_path: path, rule: refusal.rule },
    });
  }
  return {
    requested,
    path,
    uid: Number(st.uid),
    gid: Number(st.gid),
    mode: Number(st.mode),
    dev: String(st.dev),
    ino: String(st.ino),
  };
}

/** The path the client sent, in a message: as it is, or quoted and cut to ~100 characters when longer. */
function shownPath(p: string): string {
  return p.length <= 100 ? p : quote(p);
}

function builtInRefusal(path: string, config: LocalDirPolicy, env: NodeJS.ProcessEnv): Refusal | undefined {
  if (path === "/") {
    return { rule: "root", reason: "it is the root of the server's filesystem", hint: PICK_PROJECT };
  }
  const top = path.split("/")[1] ?? "";
  if (SYSTEM_DIRS.has(top) || top.startsWith("lib")) {
    return {
      rule: "system_dir",
      reason: `/${top} is a system directory, and user shed (passwordless sudo) could change the server's system files`,
      hint: PICK_PROJECT,
    };
  }
  const homes = homeDirs();
  const home = homes.find((h) => isWithin(path, h));
  if (home !== undefined) {
    return {
      rule: "home_dir",
      reason:
        home === path
          ? "it is a home directory (keys and shell start-up files the shed could read and change)"
          : `it contains the home directory ${home}`,
      hint: `mount a project directory inside it instead, e.g. ${home}/myproject`,
    };
  }
  // ~/.ssh, ~/.config, ~/.gnupg...: a shed writing ~/.ssh/authorized_keys would log in to the server.
  const hidden = homes.find((h) => h !== "/" && path.startsWith(`${h}/.`));
  if (hidden !== undefined) {
    return {
      rule: "home_hidden_dir",
      reason: `it is a hidden directory of the home ${hidden} (keys, tokens and settings live there)`,
      hint: `mount a project directory instead, e.g. ${hidden}/myproject`,
    };
  }
  const dataDir = real(config.dataDir);
  if (isWithin(dataDir, path) || isWithin(path, dataDir)) {
    return {
      rule: "server_data_dir",
      reason: `it ${isWithin(path, dataDir) ? "contains" : "is inside"} the server's data_dir ${dataDir} (host key, authorized keys, records)`,
      hint: PICK_PROJECT,
    };
  }
  const file = serverFiles(config).find((f) => isWithin(path, f));
  if (file !== undefined) {
    return {
      rule: "server_file",
      reason: `it contains ${file}, one of the server's own files (config, TLS key, env_file, authorized keys)`,
      hint: PICK_PROJECT,
    };
  }
  const socket = dockerSockets(env, config.dockerSocket).find((s) => isWithin(path, s));
  if (socket !== undefined) {
    return {
      rule: "docker_socket",
      reason: `it contains the Docker socket ${socket}, which gives root on the server`,
      hint: PICK_PROJECT,
    };
  }
  return undefined;
}

function rootsRefusal(path: string, config: LocalDirPolicy): Refusal | undefined {
  const roots = config.localDirRoots;
  if (!roots || roots.some((r) => isWithin(real(r), path))) return undefined;
  return {
    rule: "outside_local_dir_roots",
    reason: `it is outside the directories this server allows (local_dir_roots: ${roots.join(", ")})`,
    hint: "pick a directory inside one of them, or ask the server's admin to add a root",
  };
}

/** True when `inner` is `outer` or below it (both real, absolute, normalized). */
function isWithin(outer: string, inner: string): boolean {
  if (outer === "/") return true;
  return inner === outer || inner.startsWith(`${outer}/`);
}

/** The real path where it exists (a symlinked home or data_dir is compared as what it points to). */
function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * /root, every /home/NAME, and every home in /etc/passwd, read now (not
 * cached: accounts change). "/" as a home (some system accounts) is left out:
 * the root is refused on its own, and it would make every directory "inside" a home.
 */
function homeDirs(): string[] {
  const homes = new Set<string>(["/root"]);
  try {
    for (const e of readdirSync("/home", { withFileTypes: true })) if (e.isDirectory()) homes.add(`/home/${e.name}`);
  } catch {
    // No /home on this machine.
  }
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const dir = line.split(":")[5];
      if (dir && isAbsolute(dir)) homes.add(dir);
    }
  } catch {
    // No /etc/passwd: only the fixed ones.
  }
  return [...new Set([...homes].flatMap((h) => [h, real(h)]))].filter((h) => h !== "/");
}

/** Files the server reads its secrets and settings from, as given and resolved. */
function serverFiles(config: LocalDirPolicy): string[] {
  const all = [
    config.file && resolve(config.file),
    config.tls?.cert,
    config.tls?.key,
    config.envFile,
    config.authorizedKeysFile,
  ];
  return [...new Set(all.flatMap((f) => (f && isAbsolute(f) ? [f, real(f)] : [])))];
}

/** The Docker sockets of this server: the usual paths, docker_host's and DOCKER_HOST's, as given and resolved. */
function dockerSockets(env: NodeJS.ProcessEnv, configured: string | undefined): string[] {
  const all = [...DOCKER_SOCKETS, ...(configured ? [configured] : [])];
  const host = env.DOCKER_HOST;
  if (host?.startsWith("unix://")) all.push(host.slice("unix://".length));
  return [...new Set(all.flatMap((s) => (isAbsolute(s) ? [s, real(s)] : [])))];
}
