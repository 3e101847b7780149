import { homedir, hostname } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { tryParseDuration } from "../core/duration.js";
import { durationString } from "../core/duration-schema.js";
import { parseSubnetCidr } from "../core/ipv4.js";
import { sizeField, tryParseSize } from "../core/size.js";
import { BACKENDS, type BackendName } from "../core/types.js";
import { loadYamlFile } from "./load-yaml-file.js";
import { resolveUserPath } from "./paths.js";

const duration = durationString;
// 0 asks the OS for a free port (tests, several servers on one machine); /api/info tells the real one.
const port = z.number().int().min(0).max(65535);

const credentialSchema = z
  .object({
    source: z.string().min(1),
    target: z.string().startsWith("/", { message: "target must be an absolute path inside the shed" }),
    readonly: z.boolean().default(false),
    exclude: z.array(z.string()).default([]),
  })
  .strict();

export const serverConfigSchema = z
  .object({
    name: z.string().min(1).optional(),
    http_port: port.default(8080),
    ssh_port: port.default(2222),
    bind: z.string().min(1).default("127.0.0.1"),
    enabled_backends: z.array(z.enum(BACKENDS)).min(1).default(["docker"]),
    default_backend: z.enum(BACKENDS).default("docker"),
    default_image: z.string().min(1).default("shed-base:latest"),
    data_dir: z.string().min(1).optional(),
    stop_timeout: duration.default("10s"),
    credentials: z
      .record(
        z.string().regex(/^(?!\.\.?$)[A-Za-z0-9_.-]+$/, {
          message: "credential names use letters, digits, _ . - (not . or ..)",
        }),
        credentialSchema,
      )
      .default({}),
    env_file: z.string().min(1).optional(),
    ssh_authorized_keys: z.string().min(1).optional(),
    /** When set, --local-dir must be inside one of these directories (on top of the built-in refusals). */
    local_dir_roots: z.array(z.string().min(1)).min(1).optional(),
    /** Certificate and key (PEM) for the API off loopback; without them the server makes a self-signed pair once. */
    tls_cert: z.string().min(1).optional(),
    tls_key: z.string().min(1).optional(),
    /** Plain HTTP on a non-loopback bind: only when explicitly asked for, and warned about at every start. */
    insecure_http: z.boolean().default(false),
    /** The largest repository bundle a create may upload (`--repo <local path>`); more gets 413. */
    max_bundle_size: sizeField(1).default("2GiB"),
    /** An uploaded bundle that no create used is removed after this. */
    bundle_max_age: duration.default("10m"),
    /** Each hook log is rotated at this size, so a daemon a hook left behind cannot fill the disk. */
    hook_log_max_size: sizeField(4096).default("64MiB"),
    /** The Docker engine's socket; unset: DOCKER_HOST, else /var/run/docker.sock. */
    docker_host: z
      .string()
      .regex(/^unix:\/\/\/./, {
        message: "write unix:///path/to/docker.sock (for an engine over TCP or SSH, set DOCKER_HOST instead)",
      })
      .optional(),
    /** Where `npm run build-vm-image` puts VM images (a folder per image: rootfs, kernel, initrd). */
    vm_images_dir: z.string().min(1).default("/var/lib/shed/vm-images"),
    /** The image a VM shed boots when create names none (the folder `<name>-<arch>` under vm_images_dir). */
    vm_image: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]*$/, {
        message: "a VM image name uses a-z, 0-9, . _ - and starts with a letter or digit",
      })
      .default("shed-vm"),
    /** A VM shed's CPUs and memory. */
    vm_cpus: z.number().int().min(1).max(64).default(2),
    vm_memory: sizeField(128 * 1024 ** 2).default("1GiB"),
    /** A VM shed's disk (its root filesystem, grown at create); unset: the image's own size. */
    vm_disk: sizeField(1024 ** 3).optional(),
    /** Firecracker: the host bridge its TAP devices join (`shed-server setup` makes it). */
    vm_bridge: z
      .string()
      .regex(/^(?!\.\.?$)[A-Za-z0-9_.-]{1,15}$/, {
        message: "a Linux interface name: 1 to 15 of a-z A-Z 0-9 _ . - (not . or ..)",
      })
      .default("shedbr0"),
    /** Firecracker: the bridge's IPv4 subnet; the bridge takes its first host address, guests the rest. */
    vm_subnet: z
      .string()
      .superRefine((v, ctx) => {
        const r = parseSubnetCidr(v);
        if (!r.ok) ctx.addIssue({ code: "custom", message: r.why });
      })
      .default("172.30.0.0/24"),
    /** The hypervisor programs: a bare name is looked up on PATH, a path resolves like the other paths. */
    firecracker_binary: z.string().min(1).default("firecracker"),
    vfkit_binary: z.string().min(1).default("vfkit"),
    /** How long a VM may take from spawn to a healthy agent (software emulation boots slowly). */
    start_timeout: duration.default("120s"),
    /** A connection to the SSH port not authenticated within this is closed (sshd's LoginGraceTime). */
    ssh_login_grace: duration.default("30s"),
    /** An SSH client silent this long is asked to answer; after 3 unanswered in a row it is dropped. */
    ssh_keepalive_interval: duration.default("15s"),
  })
  .strict()
  .refine((c) => (c.tls_cert === undefined) === (c.tls_key === undefined), {
    message: "tls_cert and tls_key go together: set both or neither",
    path: ["tls_cert"],
  })
  .refine((c) => c.enabled_backends.includes(c.default_backend), {
    message: "default_backend must be one of enabled_backends",
    path: ["default_backend"],
  });

export interface CredentialConfig {
  name: string;
  source: string;
  target: string;
  readonly: boolean;
  exclude: string[];
}

/** The server configuration with defaults applied and every path absolute. */
export interface ServerConfig {
  file: string | undefined;
  name: string;
  httpPort: number;
  sshPort: number;
  bind: string;
  enabledBackends: BackendName[];
  defaultBackend: BackendName;
  defaultImage: string;
  dataDir: string;
  stopTimeoutMs: number;
  credentials: CredentialConfig[];
  envFile: string | undefined;
  authorizedKeysFile: string;
  /** Absolute directories --local-dir must stay inside; undefined: anywhere the built-in rules allow. */
  localDirRoots: string[] | undefined;
  tls: { cert: string; key: string } | undefined;
  insecureHttp: boolean;
  maxBundleBytes: number;
  bundleMaxAgeMs: number;
  hookLogMaxBytes: number;
  /** The socket path of `docker_host`; undefined: dockerode's default (DOCKER_HOST, else /var/run/docker.sock). */
  dockerSocket: string | undefined;
  sshLoginGraceMs: number;
  sshKeepaliveIntervalMs: number;
  vm: VmConfig;
}

/** What the VM backends share. */
export interface VmConfig {
  imagesDir: string;
  image: string;
  cpus: number;
  memoryBytes: number;
  /** undefined: a VM's disk is as large as its image's root filesystem. */
  diskBytes: number | undefined;
  startTimeoutMs: number;
  /** Firecracker's host bridge and its subnet (an IPv4 CIDR, checked by core/ipv4.ts). */
  bridge: string;
  subnet: string;
  firecrackerBinary: string;
  vfkitBinary: string;
}

export function defaultDataDir(): string {
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".local", "share"), "shed");
}

/** Loads the server config; `file` undefined means all defaults. */
export function loadServerConfig(file: string | undefined): ServerConfig {
  const raw = file ? loadYamlFile(file, serverConfigSchema, { what: "server config" }) : serverConfigSchema.parse({});
  const base = file ? dirname(file) : process.cwd();
  const dataDir = raw.data_dir ? resolveUserPath(raw.data_dir, base) : defaultDataDir();
  return {
    file,
    name: raw.name ?? hostname(),
    httpPort: raw.http_port,
    sshPort: raw.ssh_port,
    bind: raw.bind,
    enabledBackends: [...new Set(raw.enabled_backends)],
    defaultBackend: raw.default_backend,
    defaultImage: raw.default_image,
    dataDir,
    stopTimeoutMs: tryParseDuration(raw.stop_timeout) ?? 10_000,
    credentials: Object.entries(raw.credentials).map(([name, c]) => ({
      name,
      source: resolveUserPath(c.source, base),
      target: c.target,
      readonly: c.readonly,
      exclude: c.exclude,
    })),
    envFile: raw.env_file ? resolveUserPath(raw.env_file, base) : undefined,
    authorizedKeysFile: raw.ssh_authorized_keys
      ? resolveUserPath(raw.ssh_authorized_keys, base)
      : join(dataDir, "authorized_keys"),
    localDirRoots: raw.local_dir_roots?.map((r) => resolveUserPath(r, base)),
    tls:
      raw.tls_cert && raw.tls_key
        ? { cert: resolveUserPath(raw.tls_cert, base), key: resolveUserPath(raw.tls_key, base) }
        : undefined,
    insecureHttp: raw.insecure_http,
    maxBundleBytes: tryParseSize(raw.max_bundle_size) ?? 2 * 1024 ** 3,
    bundleMaxAgeMs: tryParseDuration(raw.bundle_max_age) ?? 10 * 60_000,
    hookLogMaxBytes: tryParseSize(raw.hook_log_max_size) ?? 64 * 1024 ** 2,
    dockerSocket: raw.docker_host?.slice("unix://".length),
    sshLoginGraceMs: tryParseDuration(raw.ssh_login_grace) ?? 30_000,
    sshKeepaliveIntervalMs: tryParseDuration(raw.ssh_keepalive_interval) ?? 15_000,
    vm: {
      imagesDir: resolveUserPath(raw.vm_images_dir, base),
      image: raw.vm_image,
      cpus: raw.vm_cpus,
      memoryBytes: tryParseSize(raw.vm_memory) ?? 1024 ** 3,
      diskBytes: raw.vm_disk === undefined ? undefined : tryParseSize(raw.vm_disk),
      startTimeoutMs: tryParseDuration(raw.start_timeout) ?? 120_000,
      bridge: raw.vm_bridge,
      subnet: raw.vm_subnet,
      firecrackerBinary: programPath(raw.firecracker_binary, base),
      vfkitBinary: programPath(raw.vfkit_binary, base),
    },
  };
}

/** A program setting: a bare name stays a name for PATH; anything with a slash is a path (~/ expands). */
function programPath(value: string, base: string): string {
  return value.includes("/") ? resolveUserPath(value, base) : value;
}
