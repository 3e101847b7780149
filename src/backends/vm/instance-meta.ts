import { readFileSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../../core/atomic-file.js";
import { ShedError } from "../../core/errors.js";
import { instancePath } from "./instance-dir.js";

/**
 * The metadata file of one VM instance (`instance.json`): what the server needs to know about the
 * shed when it has no memory of it, i.e. after a crash or restart. It is the source of truth for a
 * VM shed together with the live process (DESIGN.md), so it is always written whole and atomically.
 *
 * `version` lets a later server read an older file: `parseInstanceMeta` migrates every known
 * version to the current shape, and refuses a newer one instead of guessing at it.
 */
export const INSTANCE_META_VERSION = 1;

/**
 * A process the instance runs (the hypervisor, its network helper). A pid alone is not an identity
 * (pids are reused); pid + start time (clock ticks since boot, /proc/PID/stat field 22) is.
 * argv0 is kept for humans reading the file and as a second check.
 */
const processRecordSchema = z
  .object({
    pid: z.number().int().positive(),
    start_time: z.string().regex(/^\d+$/),
    argv0: z.string(),
    started_at: z.string(),
  })
  .strict();

export type ProcessRecord = z.infer<typeof processRecordSchema>;

const portSchema = z.number().int().min(1).max(65_535);

/**
 * A --local-dir shed's directory as the server checked it at create: its real path, and its device
 * and inode (decimal strings), so every start can tell that the path still leads to that directory.
 * Optional: a file written before --local-dir existed on VMs has none and means "no local dir".
 */
const localDirSchema = z
  .object({
    path: z.string().startsWith("/"),
    dev: z.string().regex(/^\d+$/),
    ino: z.string().regex(/^\d+$/),
  })
  .strict();

export type InstanceLocalDir = z.infer<typeof localDirSchema>;

/**
 * A Firecracker instance's host network and vsock identity, allocated at create and kept for the
 * instance's life (released when it is deleted): the TAP device on the bridge, the guest's IPv4
 * address on the bridge's subnet, its MAC, and the vsock context id. Optional: QEMU and VZ
 * instances, and files written before Firecracker existed, have none.
 */
const vmNetworkSchema = z
  .object({
    tap: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/),
    ip: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/),
    mac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/),
    cid: z.number().int().min(3).max(0xffff_fffe),
  })
  .strict();

export type InstanceNetwork = z.infer<typeof vmNetworkSchema>;

const instanceMetaV1Schema = z
  .object({
    version: z.literal(1),
    name: z.string(),
    backend: z.enum(["qemu", "firecracker", "vz"]),
    /** The base image directory the instance's overlay sits on. */
    image: z.string(),
    arch: z.enum(["x86_64", "arm64"]),
    created_at: z.string(),
    repo: z.string().optional(),
    display: z.string().optional(),
    /** The --local-dir mounted at /workspace through virtiofs, re-mounted on every start. */
    local_dir: localDirSchema.optional(),
    /** Firecracker only: TAP, guest IP, MAC and vsock CID (firecracker/net-alloc.ts). */
    network: vmNetworkSchema.optional(),
    /** The shed-server that made the instance (data_dir/server_id). */
    server_id: z.string(),
    /** How the host reaches the agent: a loopback-forwarded TCP port (with the secret) or vsock. */
    agent_transport: z.enum(["tcp", "vsock"]),
    /** Host loopback ports forwarded into the guest, by purpose (exec, control). Kept across restarts. */
    ports: z.record(z.string(), portSchema),
    /** The running hypervisor, or null when the server last saw it stopped. */
    hypervisor: processRecordSchema.nullable(),
    /** Helper processes started with the hypervisor, by role: `net` (pasta), `fs` (virtiofsd, with a --local-dir). */
    helpers: z.record(z.string(), processRecordSchema),
    memory_mib: z.number().int().positive(),
    cpus: z.number().int().positive(),
    /**
     * The disk's size when the create grew it past the image's (`--disk`, vm_disk); the guest's root
     * filesystem is grown to it at boot. Optional: files written before sizing existed, and
     * instances left at the image's size, have none.
     */
    disk_bytes: z.number().int().positive().optional(),
    last_started_at: z.string().optional(),
    last_stopped_at: z.string().optional(),
    /** How the last stop ended: a clean powerdown, a kill after the timeout, or a death the server found. */
    last_stop: z.enum(["powerdown", "killed", "died"]).optional(),
  })
  .strict();

export type InstanceMeta = z.infer<typeof instanceMetaV1Schema>;

/** Parses a metadata document of any known version into the current shape. */
export function parseInstanceMeta(raw: unknown, where: string): InstanceMeta {
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version !== "number") {
    throw corrupt(where, "it has no version field");
  }
  if (version > INSTANCE_META_VERSION) {
    throw new ShedError(
      "BACKEND_ERROR",
      `VM metadata ${where} has version ${version}; this shed-server reads up to version ${INSTANCE_META_VERSION}`,
      { hint: "a newer shed-server wrote it: run that version, or upgrade this one" },
    );
  }
  // Version 1 is the first format; a migration from N to N+1 goes here as formats change.
  const parsed = instanceMetaV1Schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corrupt(where, `${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

function corrupt(where: string, why: string): ShedError {
  return new ShedError("BACKEND_ERROR", `VM metadata ${where} is not valid: ${why}`, {
    hint: "the instance directory was edited or damaged; `shed delete` removes it",
  });
}

export function writeInstanceMeta(dir: string, meta: InstanceMeta): void {
  const checked = parseInstanceMeta(meta, instancePath(dir, "meta"));
  writeFileAtomic(instancePath(dir, "meta"), `${JSON.stringify(checked, null, 2)}\n`, 0o600);
}

/** The instance's metadata, or undefined when the directory has none (a create that died before writing it). */
export function readInstanceMeta(dir: string): InstanceMeta | undefined {
  const file = instancePath(dir, "meta");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt(file, "it is not JSON");
  }
  return parseInstanceMeta(raw, file);
}

/** Read, change, write back. Callers hold the shed's per-name lock, so there is no concurrent writer. */
export function updateInstanceMeta(dir: string, change: (meta: InstanceMeta) => InstanceMeta): InstanceMeta {
  const current = readInstanceMeta(dir);
  if (!current) {
    throw new ShedError("BACKEND_ERROR", `VM metadata ${instancePath(dir, "meta")} is missing`, {
      hint: "the instance was not fully created; `shed delete` removes what is left",
    });
  }
  const next = change(current);
  writeInstanceMeta(dir, next);
  return next;
}
