import { accessSync, chmodSync, constants, existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { ShedError } from "../../core/errors.js";
import { type InstanceLocalDir, type ProcessRecord, updateInstanceMeta } from "../vm/instance-meta.js";
import { isAlive, killProcess, spawnDetached } from "../vm/process.js";
import { pollUntil, tailFile } from "../vm/wait.js";

/**
 * A --local-dir on the QEMU backend: virtiofsd (Debian's qemu-system-common ships QEMU 7.2's C
 * daemon) exports exactly that directory over a vhost-user socket in the instance directory, QEMU
 * gives the guest a vhost-user-fs-pci device (tag TAG) over shared guest memory, and the guest
 * mounts it at /workspace (qemu-local-dir.ts).
 *
 * virtiofsd runs on the host as the server's user, which must be root: it switches to the guest
 * caller's uid and gid for every file operation (so what user shed writes belongs to the directory
 * owner), and it confines itself with namespaces: it forks a child that pivot_roots into the
 * directory, so nothing the guest does (a `..`, a symlink to /etc) reaches past it. It serves one
 * connection and exits when QEMU goes, so every boot starts a new one.
 */
export const VIRTIOFSD = "/usr/lib/qemu/virtiofsd";

/** The mount tag the guest names (`mount -t virtiofs workspace /workspace`). */
export const VIRTIOFS_TAG = "workspace";

/** Fails fast when --local-dir cannot work on this server: no virtiofsd, or not running as root. */
export function checkVirtiofsAvailable(): void {
  try {
    accessSync(VIRTIOFSD, constants.X_OK);
  } catch {
    throw new ShedError("NOT_SUPPORTED", `--local-dir on the qemu backend needs ${VIRTIOFSD}, which is not installed`, {
      hint: "install it on the server host (apt-get install qemu-system-common), or use --repo",
    });
  }
  if (process.getuid?.() !== 0) {
    throw new ShedError("NOT_SUPPORTED", "--local-dir on the qemu backend needs shed-server running as root", {
      hint: "virtiofsd must run as root to write files as the directory's owner; run shed-server as root, or use --repo",
    });
  }
}

/** virtiofsd's -o values are split on commas (libfuse's option parser): a backslash escapes one. */
export function fuseOptValue(value: string): string {
  return value.replace(/[\\,]/g, (c) => `\\${c}`);
}

export function buildVirtiofsdArgv(o: { source: string; socket: string }): string[] {
  return [
    VIRTIOFSD,
    `--socket-path=${o.socket}`,
    "-o",
    `source=${fuseOptValue(o.source)}`,
    "-o",
    "sandbox=namespace",
    // The user edits this directory on the host while the VM runs: with attribute and entry timeouts
    // of 0 the guest asks again on every lookup, and cache=auto drops a file's cached pages when it is
    // opened, so a host-side change shows in the VM at once. cache=none would do that too, but opens
    // files for direct I/O, where a shared writable mmap fails (SQLite's -shm file, for one).
    "-o",
    "cache=auto",
    "-o",
    "timeout=0",
  ];
}

/**
 * The recorded directory as it is now on the host. It must be the one the server checked at create
 * (device and inode): the rules (local-dir-policy.ts) judged that directory, and a path that now
 * leads elsewhere (the directory replaced, a part of its path turned into a symlink) was never judged.
 */
export function checkRecordedLocalDir(dir: InstanceLocalDir): void {
  let now: { dev: bigint; ino: bigint; dir: boolean };
  try {
    const st = statSync(dir.path, { bigint: true });
    now = { dev: st.dev, ino: st.ino, dir: st.isDirectory() };
  } catch (err) {
    throw new ShedError(
      "LOCAL_DIR_NOT_FOUND",
      `the shed's --local-dir ${dir.path} is gone: ${(err as Error).message}`,
      {
        hint: "put the directory back, or `shed delete` the shed (the directory is never touched) and create it again",
      },
    );
  }
  if (!now.dir || String(now.dev) !== dir.dev || String(now.ino) !== dir.ino) {
    throw new ShedError(
      "LOCAL_DIR_REFUSED",
      `${dir.path} is no longer the directory this shed was created with: it was replaced, or a part of its path now leads elsewhere`,
      {
        hint: "put the original directory back, or `shed delete` the shed (the directory is never touched) and create it again with --local-dir",
      },
    );
  }
}

/**
 * Starts virtiofsd for `dir` (recorded as the instance's `fs` helper before anything waits on it,
 * so a failure or a server death leaves it findable) and resolves once its socket is there, 0600.
 * It is not probed by connecting: virtiofsd serves exactly one connection, which must be QEMU's.
 */
export async function startVirtiofsd(o: {
  instanceDir: string;
  dir: InstanceLocalDir;
  socket: string;
  log: string;
}): Promise<ProcessRecord> {
  checkRecordedLocalDir(o.dir);
  rmSync(o.socket, { force: true });
  const fs = await spawnDetached({
    argv: buildVirtiofsdArgv({ source: o.dir.path, socket: o.socket }),
    cwd: o.instanceDir,
    stdoutFile: o.log,
    stderrFile: o.log,
  });
  updateInstanceMeta(o.instanceDir, (m) => ({ ...m, helpers: { ...m.helpers, fs } }));
  const up = await pollUntil({
    ready: () => existsSync(o.socket),
    failed: () => (isAlive(fs) ? undefined : "virtiofsd exited"),
    timeoutMs: 10_000,
  });
  if (!up.ok) {
    await killProcess(fs, 1_000);
    const log = tailFile(o.log, 10);
    throw new ShedError(
      "BACKEND_ERROR",
      `virtiofsd did not start for ${o.dir.path}: ${up.reason}${log ? `; ${o.log}:\n${log}` : ""}`,
      { hint: "check that the directory is readable by root on the server" },
    );
  }
  // virtiofsd binds it under its own umask; the 0700 instance directory is the real guard.
  chmodSync(o.socket, 0o600);
  return fs;
}

/**
 * Device and inode of the directory virtiofsd actually serves: the root of its sandboxed child
 * (which pivot_rooted into the directory), seen from the host through /proc/PID/root. The child
 * exists once QEMU has connected.
 */
export function servedRoot(fs: ProcessRecord): { dev: string; ino: string } {
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${fs.pid}/task/${fs.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    // gone: said below
  }
  for (const pid of children) {
    try {
      const st = statSync(`/proc/${pid}/root`, { bigint: true });
      return { dev: String(st.dev), ino: String(st.ino) };
    } catch {
      // exited meanwhile
    }
  }
  throw new ShedError("BACKEND_ERROR", `virtiofsd (pid ${fs.pid}) has no sandboxed process serving the directory`, {
    hint: "the VM's shared directory failed; see virtiofsd.log in the instance directory",
  });
}
