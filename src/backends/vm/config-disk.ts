import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../../core/atomic-file.js";
import { ShedError } from "../../core/errors.js";

/**
 * The per-VM config disk: a raw 4096-byte virtio-blk disk (serial `shedcfg`) holding one JSON
 * document padded with NULs. It is how the agent secret reaches the guest without ever appearing
 * on a command line (every user of the host can read QEMU's argv). The guest's boot service reads
 * it once at boot; the host keeps the same file (0600, in the 0700 instance directory) as its own
 * copy of the secret.
 */
export const CONFIG_DISK_SIZE = 4096;
export const CONFIG_DISK_SERIAL = "shedcfg";

export interface ConfigDiskContent {
  /** 64 lowercase hex characters (32 random bytes). */
  secret: string;
  hostname: string;
}

export function newAgentSecret(): string {
  return randomBytes(32).toString("hex");
}

export function encodeConfigDisk(content: ConfigDiskContent): Buffer {
  if (!/^[0-9a-f]{64}$/.test(content.secret)) {
    throw new ShedError("INTERNAL", "the agent secret must be 64 lowercase hex characters");
  }
  const json = Buffer.from(JSON.stringify({ secret: content.secret, hostname: content.hostname }), "utf8");
  if (json.length >= CONFIG_DISK_SIZE) {
    throw new ShedError(
      "INTERNAL",
      `the VM config document is ${json.length} bytes; the config disk holds ${CONFIG_DISK_SIZE}`,
    );
  }
  const disk = Buffer.alloc(CONFIG_DISK_SIZE, 0);
  json.copy(disk);
  return disk;
}

/** Writes a config disk with a fresh secret (unless one is given) and returns what it holds. */
export function writeConfigDisk(path: string, hostname: string, secret = newAgentSecret()): ConfigDiskContent {
  const content = { secret, hostname };
  writeFileAtomic(path, encodeConfigDisk(content), 0o600);
  return content;
}

export function readConfigDisk(path: string): ConfigDiskContent {
  const bytes = readFileSync(path);
  const end = bytes.indexOf(0);
  const text = bytes.subarray(0, end === -1 ? bytes.length : end).toString("utf8");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  const d = doc as Partial<ConfigDiskContent> | undefined;
  if (!d || typeof d.secret !== "string" || !/^[0-9a-f]{64}$/.test(d.secret) || typeof d.hostname !== "string") {
    // Never echo the content: it is the secret.
    throw new ShedError("BACKEND_ERROR", `the VM config disk ${path} does not hold a valid config document`, {
      hint: "the instance directory was damaged; `shed delete` and create the shed again",
    });
  }
  return { secret: d.secret, hostname: d.hostname };
}
