import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";

/**
 * Each VM shed owns one directory, `<data_dir>/vm/<name>/`, holding everything its hypervisor needs
 * and everything the server needs to find it again after a restart: the metadata file, the disk
 * overlay, the config disk (which carries the agent secret), the control sockets and the logs.
 * The directory is 0700 so the secret and the sockets are the server user's alone (a socket's own
 * mode is not honoured everywhere; the directory's is).
 */
export const INSTANCE_FILES = {
  meta: "instance.json",
  overlay: "root.qcow2",
  configDisk: "config.img",
  qmpSocket: "qmp.sock",
  serialLog: "serial.log",
  hypervisorStdout: "hypervisor.out",
  hypervisorStderr: "hypervisor.err",
  netLog: "net.log",
  netStdout: "net.out",
  /** The hypervisor's /etc/resolv.conf inside its own namespace (QEMU only). */
  resolvConf: "resolv.conf",
  pidFile: "hypervisor.pid",
  /** virtiofsd's vhost-user socket and log, for a --local-dir (QEMU only). */
  fsSocket: "virtiofs.sock",
  fsLog: "virtiofsd.log",
  /** Firecracker and VZ: the instance's own raw copy of the image's rootfs (a reflink or clone where the filesystem can). */
  rawDisk: "rootfs.img",
  /** Firecracker: its REST API socket, and the host end of the guest's vsock (CONNECT <port>). */
  apiSocket: "firecracker.sock",
  vsockSocket: "vsock.sock",
} as const;

export type InstanceFile = keyof typeof INSTANCE_FILES;

/** Linux's sun_path holds 108 bytes including the terminating NUL. */
const MAX_UNIX_SOCKET_PATH = 107;

export function vmRootDir(dataDir: string): string {
  return join(dataDir, "vm");
}

export function instanceDir(dataDir: string, name: string): string {
  return join(vmRootDir(dataDir), validateShedName(name));
}

export function instancePath(dir: string, file: InstanceFile): string {
  return join(dir, INSTANCE_FILES[file]);
}

/**
 * Makes (or re-secures) the instance directory at 0700. The `vm/` parent is 0700 too, so even a
 * listing of which sheds exist stays private. Refuses a symlink in place of the directory: the
 * server writes secrets into it.
 */
export function createInstanceDir(dataDir: string, name: string): string {
  const root = vmRootDir(dataDir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  chmodSync(root, 0o700);
  const dir = instanceDir(dataDir, name);
  if (existsSync(dir) && !lstatSync(dir).isDirectory()) {
    throw new ShedError("BACKEND_ERROR", `the VM instance path ${dir} exists and is not a directory`, {
      hint: "remove it; shed-server makes this directory itself",
    });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode passes through the umask and leaves an existing directory as it was.
  chmodSync(dir, 0o700);
  checkSocketPaths(dir);
  return dir;
}

/**
 * Hypervisors bind their control sockets inside the instance directory; a data_dir deep enough to push
 * those paths past the kernel's limit would fail later with a cryptic bind error, so say it here.
 */
export function checkSocketPaths(dir: string): void {
  for (const file of ["qmpSocket", "fsSocket", "apiSocket", "vsockSocket"] as const) {
    const path = instancePath(dir, file);
    if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH) {
      throw new ShedError(
        "INVALID_CONFIG",
        `the VM control socket path ${path} is ${Buffer.byteLength(path)} bytes; Unix sockets allow at most ${MAX_UNIX_SOCKET_PATH}`,
        { hint: "use a shorter data_dir in the server config, or a shorter shed name" },
      );
    }
  }
}

export function removeInstanceDir(dataDir: string, name: string): void {
  rmSync(instanceDir(dataDir, name), { recursive: true, force: true });
}

/** Names of the instance directories present (valid shed names only; anything else there is not ours). */
export function listInstanceNames(dataDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(vmRootDir(dataDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return entries
    .filter((n) => {
      try {
        validateShedName(n);
        return lstatSync(join(vmRootDir(dataDir), n)).isDirectory();
      } catch {
        return false;
      }
    })
    .sort();
}
