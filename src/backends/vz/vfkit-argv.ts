import { isAbsolute, join } from "node:path";
import { ShedError } from "../../core/errors.js";
import { CONFIG_DISK_SERIAL } from "../vm/config-disk.js";

/**
 * vfkit's argv for one VZ machine, built as an array (never a shell string) to vfkit's own
 * documentation: doc/usage.md in github.com/crc-org/vfkit ("vfkit Command Line"). Where the doc is
 * silent on how a value is parsed, the rules below follow vfkit's parsers as read in that repository
 * (pkg/cmdline/string_slice.go, pkg/config/virtio.go, pkg/config/bootloader.go, pkg/vf/vsock.go,
 * pkg/rest/rest.go):
 *
 * - `--device TYPE,opt,key=value,...` is split with a plain split on every comma (no quoting at all),
 *   then each option at its FIRST '=': a comma can never be inside a value, while '=' and '"' can.
 * - `--bootloader linux,kernel=...,initrd=...,cmdline="..."` is split on commas outside double
 *   quotes (a '"' opens or closes a quoted stretch and stays in the text); cmdline then loses its
 *   enclosing quotes. So kernel and initrd can hold neither ',' nor '"', and the command line,
 *   which the doc says must be enclosed in '"', can hold ',' but no '"'.
 * - A virtio-vsock socketURL is handed to Go's URL parser ("unix://:" + path) and listened on at the
 *   URL's escaped path: a space, '%', '?', '#' or any non-ASCII byte would make vfkit listen
 *   somewhere else, or refuse. `--restful-uri unix://PATH` goes through the URL parser too.
 *
 * Nothing secret goes here: every user of the host can read a process's argv.
 */

export interface VfkitInput {
  binary: string;
  cpus: number;
  memoryMiB: number;
  /** Uncompressed arm64 kernel (vfkit refuses a compressed one). */
  kernel: string;
  initrd: string;
  cmdline: string;
  /** Raw image: VZ reads no qcow2 (the doc's "Thin images"); a clonefile(2) copy of the base is cheap on APFS. */
  rootDisk: string;
  /** The 4096-byte raw config disk; the guest finds it by its virtio-blk serial. */
  configDisk: string;
  mac: string;
  /** One per agent port: vfkit listens on `socket`, and each connection to it reaches the guest's `port`. */
  vsock: { port: number; socket: string }[];
  shares: { tag: string; dir: string }[];
  serialLog: string;
  /** vfkit's REST API on this Unix socket (state, stop); undefined: no REST service at all. */
  restSocket?: string;
}

/**
 * Bounds Shed enforces before spawning. VZ's own limits are host-dependent
 * (VZVirtualMachineConfiguration.minimumAllowedCPUCount / maximumAllowedCPUCount /
 * minimumAllowedMemorySize / maximumAllowedMemorySize) and are only known on the Mac itself, where
 * vfkit checks them; these are the static bounds inside which a create is worth attempting.
 */
export const VZ_LIMITS = { maxCpus: 32, maxMemoryMiB: 262144, minCpus: 1, minMemoryMiB: 128 } as const;

/** The config disk's virtio-blk serial, as the image's boot script looks for it (vfkit's `deviceId`). */
export const CONFIG_DISK_DEVICE_ID = CONFIG_DISK_SERIAL;

/** macOS's sun_path is 104 bytes with its NUL: a longer socket path cannot be bound at all. */
export const MAX_SOCKET_PATH_BYTES = 103;

/** Where the vfkit conventions put the host end of vsock port `port` (one Unix socket per port). */
export function vfkitVsockSocketPath(instanceDir: string, port: number): string {
  return join(instanceDir, `vsock-${port}.sock`);
}

/**
 * Which of vfkit's parsers a path goes through:
 * - "device": a `--device` option value (disk, shared directory, serial log);
 * - "bootloader": kernel= or initrd= of `--bootloader`;
 * - "socket": a Unix socket path vfkit turns into a URL (vsock socketURL, `--restful-uri`).
 */
export type VfkitPathKind = "device" | "bootloader" | "socket";

/** Letters, digits and `/ . _ ~ + @ : = -`: what Go's URL parsing hands back unchanged as a path. */
const SOCKET_PATH_CHAR = /[A-Za-z0-9/._~+@:=-]/;

/**
 * Throws INVALID_REQUEST naming `what`, the path and the character when vfkit's argument syntax
 * cannot carry the path (see the file comment for each parser's rules). Every path goes through
 * here before it reaches the argv; callers also use it to refuse a create before anything is made.
 */
export function checkVfkitPath(path: string, what: string, kind: VfkitPathKind = "device"): void {
  const refuse = (why: string, extra: Record<string, unknown> = {}, hint = defaultHint(what)): never => {
    throw new ShedError("INVALID_REQUEST", `the vz backend cannot use ${what} ${JSON.stringify(path)}: ${why}`, {
      hint,
      details: { field: what, path, ...extra },
    });
  };
  if (!isAbsolute(path)) refuse("vfkit needs an absolute path");
  for (const ch of path) {
    const code = ch.codePointAt(0) as number;
    // --device would carry one, Go's URL parser refuses one: a single rule for every kind.
    if (code < 0x20 || code === 0x7f) {
      refuse(`it contains the control character U+${code.toString(16).padStart(4, "0").toUpperCase()}`, {
        character: ch,
      });
    }
    if (ch === ",") {
      refuse("it contains ',', and vfkit splits its options on commas with no way to quote one", { character: ch });
    }
    if (ch === '"' && kind === "bootloader") {
      refuse(`it contains '"', which vfkit's --bootloader option reads as a quote`, { character: ch });
    }
    if (kind === "socket" && !SOCKET_PATH_CHAR.test(ch)) {
      refuse(
        `it contains ${JSON.stringify(ch)}; vfkit reads a socket path as a URL, which keeps only letters, digits and / . _ ~ + @ : = - unchanged`,
        { character: ch },
        "keep data_dir (where instance sockets live) on a path of plain letters, digits and / . _ - (no spaces)",
      );
    }
  }
  if (kind === "socket" && Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    refuse(
      `it is ${Buffer.byteLength(path)} bytes long, and a Unix socket path on macOS holds at most ${MAX_SOCKET_PATH_BYTES}`,
      { bytes: Buffer.byteLength(path), max: MAX_SOCKET_PATH_BYTES },
      "use a shorter data_dir in the server config (instance sockets live under it)",
    );
  }
}

function defaultHint(what: string): string {
  return `use a path for ${what} without that character (rename or move the directory), or another backend`;
}

/**
 * The kernel command line goes inside `cmdline="..."`: a '"' in it would end vfkit's quoting
 * early (and cannot be escaped), so it is refused, as is a control character.
 */
export function checkVfkitCmdline(cmdline: string): void {
  for (const ch of cmdline) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"' || code < 0x20 || code === 0x7f) {
      throw new ShedError(
        "INTERNAL",
        `the kernel command line cannot go through vfkit's --bootloader option: it contains ${JSON.stringify(ch)}`,
        { details: { cmdline, character: ch } },
      );
    }
  }
}

/** The MAC as vfkit (Go's net.ParseMAC) takes it: six colon-separated hex pairs. */
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
/** VZ's virtio-fs tag: non-empty, fewer than 36 bytes (validateTag); plain characters so it needs no quoting anywhere. */
const TAG = /^[A-Za-z0-9_-]{1,35}$/;

function checkLimits(cpus: number, memoryMiB: number): void {
  const { minCpus, maxCpus, minMemoryMiB, maxMemoryMiB } = VZ_LIMITS;
  if (!Number.isInteger(cpus) || cpus < minCpus || cpus > maxCpus) {
    throw new ShedError(
      "INVALID_REQUEST",
      `the vz backend takes ${minCpus} to ${maxCpus} CPUs; ${cpus} were asked for`,
      {
        hint: `ask for at most ${maxCpus} CPUs (vm_cpus in the server config)`,
        details: { field: "cpus", value: cpus, min: minCpus, max: maxCpus },
      },
    );
  }
  if (!Number.isInteger(memoryMiB) || memoryMiB < minMemoryMiB || memoryMiB > maxMemoryMiB) {
    throw new ShedError(
      "INVALID_REQUEST",
      `the vz backend takes ${minMemoryMiB} to ${maxMemoryMiB} MiB of memory; ${memoryMiB} MiB were asked for`,
      {
        hint: `set vm_memory between ${minMemoryMiB} MiB and ${maxMemoryMiB / 1024} GiB in whole MiB`,
        details: { field: "memory", value: memoryMiB, min: minMemoryMiB, max: maxMemoryMiB },
      },
    );
  }
}

function internal(message: string): ShedError {
  return new ShedError("INTERNAL", message);
}

export function buildVfkitArgv(o: VfkitInput): string[] {
  checkLimits(o.cpus, o.memoryMiB);
  checkVfkitPath(o.kernel, "the VM kernel", "bootloader");
  checkVfkitPath(o.initrd, "the VM initrd", "bootloader");
  checkVfkitCmdline(o.cmdline);
  checkVfkitPath(o.rootDisk, "the root disk", "device");
  checkVfkitPath(o.configDisk, "the config disk", "device");
  checkVfkitPath(o.serialLog, "the serial log", "device");
  if (!MAC.test(o.mac)) throw internal(`${JSON.stringify(o.mac)} is not a MAC address vfkit reads`);

  const ports = new Set<number>();
  const sockets = new Set<string>();
  for (const v of o.vsock) {
    if (!Number.isInteger(v.port) || v.port < 1 || v.port > 0xffffffff) {
      throw internal(`vsock port ${v.port} is not a port number`);
    }
    // vfkit adds one vsock device whatever the count, so a port can be asked for only once.
    if (ports.has(v.port)) throw internal(`vsock port ${v.port} is asked for twice`);
    ports.add(v.port);
    checkVfkitPath(v.socket, `the vsock socket for port ${v.port}`, "socket");
    if (sockets.has(v.socket)) throw internal(`vsock socket ${v.socket} is given to two ports`);
    sockets.add(v.socket);
  }
  const tags = new Set<string>();
  for (const s of o.shares) {
    if (!TAG.test(s.tag)) throw internal(`${JSON.stringify(s.tag)} is not a virtio-fs tag VZ accepts`);
    if (tags.has(s.tag)) throw internal(`virtio-fs tag ${s.tag} is used twice`);
    tags.add(s.tag);
    checkVfkitPath(s.dir, `the shared directory (${s.tag})`, "device");
  }
  if (o.restSocket !== undefined) checkVfkitPath(o.restSocket, "vfkit's REST socket", "socket");

  const device = (value: string) => ["--device", value];
  return [
    o.binary,
    "--cpus",
    String(o.cpus),
    "--memory",
    String(o.memoryMiB),
    "--bootloader",
    `linux,kernel=${o.kernel},initrd=${o.initrd},cmdline="${o.cmdline}"`,
    // Storage devices reach the guest in this order: the root disk is /dev/vda.
    ...device(`virtio-blk,path=${o.rootDisk}`),
    // blockDeviceIdentifier (macOS 12.3 or later) is the virtio-blk serial the boot script looks for.
    ...device(`virtio-blk,path=${o.configDisk},deviceId=${CONFIG_DISK_DEVICE_ID}`),
    ...device(`virtio-net,nat,mac=${o.mac}`),
    ...device("virtio-rng"),
    // `connect`: vfkit listens on the Unix socket and connects each accepted connection to the
    // guest's port (host-initiated). vfkit's default, `listen`, is the other direction: vfkit
    // would dial the socket whenever the guest connects to the port.
    ...o.vsock.flatMap((v) => device(`virtio-vsock,port=${v.port},socketURL=${v.socket},connect`)),
    ...o.shares.flatMap((s) => device(`virtio-fs,sharedDir=${s.dir},mountTag=${s.tag}`)),
    ...device(`virtio-serial,logFilePath=${o.serialLog}`),
    // Explicitly off without a socket: some vfkit versions documented tcp://localhost:8081 as the
    // default, which a second VM could not bind.
    "--restful-uri",
    o.restSocket === undefined ? "none://" : `unix://${o.restSocket}`,
  ];
}
