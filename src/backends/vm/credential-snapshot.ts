import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import { extract, Parser, type ReadEntry } from "tar";
import type { AgentClient } from "../../agent/client/agent-client.js";
import type { CredentialConfig } from "../../config/server-config.js";
import { ShedError } from "../../core/errors.js";
import { packArgv } from "../../guest/credential-copy.js";

/**
 * What one side of a credential holds, as live sync compares it: its regular
 * files by path relative to the credential ("" for a file credential), each
 * with a content hash. Both sides are read through the host's GNU tar with the
 * credential's packing rules (credential-copy.ts), so an `exclude` pattern
 * hides the same files on the guest's side as it keeps from leaving the host.
 * Symlinks, empty directories and modes are not compared: the copy at create
 * and start brings those.
 */

export interface SnapFile {
  hash: string;
  /** Permission bits as archived. */
  mode: number;
  data: Buffer;
}

export interface Snapshot {
  isDir: boolean;
  files: Map<string, SnapFile>;
}

/** Credentials are small; a side larger than this is not synced (and says so). */
export const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;

export function hashOf(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Reads path (c.source, or a copy of the guest's side) as c's packing rules see it; undefined when it is missing. */
export async function snapshotPath(c: CredentialConfig, path: string): Promise<Snapshot | undefined> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    return undefined;
  }
  const tar = spawn("tar", packArgv({ ...c, source: path }, isDir), { stdio: ["ignore", "pipe", "pipe"] });
  const err: Buffer[] = [];
  tar.stderr.on("data", (d: Buffer) => err.push(d));
  const exited = new Promise<number>((resolve, reject) => {
    tar.on("error", reject);
    tar.on("close", (code) => resolve(code ?? 1));
  });
  const parsed = parseFiles(tar.stdout, isDir, c.name).catch((err) => {
    tar.kill();
    throw err;
  });
  const [files, code] = await Promise.all([parsed, exited]);
  if (code !== 0) {
    // Only the tool's message, which names paths, never contents.
    throw new ShedError("BACKEND_ERROR", `credential ${c.name}: reading ${path} failed: ${Buffer.concat(err)}`.trim());
  }
  return { isDir, files };
}

/** The guest's side of c: fetched as tar through the agent, unpacked in a private temp dir, read like the host's. */
export async function snapshotGuest(agent: AgentClient, c: CredentialConfig): Promise<Snapshot | undefined> {
  let stream: Readable;
  try {
    stream = await agent.getTar({ path: c.target, maxBytes: MAX_SNAPSHOT_BYTES });
  } catch (err) {
    if (agent.isClosed) throw err;
    // The agent refuses a path that does not exist; any other refusal reads the same way to sync.
    return undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), "shed-credsync-"));
  try {
    // node-tar's own guards stay on: no absolute paths, no `..`, nothing written through a symlink.
    // Read whole first (the agent caps it at MAX_SNAPSHOT_BYTES): credentials are small.
    const archive = await collect(stream);
    const unpack = extract({ cwd: dir, strict: true, preserveOwner: false });
    await new Promise<void>((resolve, reject) => {
      unpack.on("error", reject);
      unpack.on("close", () => resolve());
      unpack.end(archive);
    });
    return await snapshotPath(c, join(dir, basename(c.target)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseFiles(archive: Readable, isDir: boolean, name: string): Promise<Map<string, SnapFile>> {
  const files = new Map<string, SnapFile>();
  let total = 0;
  return new Promise((resolve, reject) => {
    const parser = new Parser({ strict: true });
    parser.on("entry", (entry: ReadEntry) => {
      if (entry.type !== "File" && entry.type !== "OldFile" && entry.type !== "ContiguousFile") {
        entry.resume();
        return;
      }
      const rel = isDir ? entry.path.replace(/^\.\//, "").replace(/\/$/, "") : "";
      const chunks: Buffer[] = [];
      entry.on("data", (d: Buffer) => {
        total += d.length;
        if (total > MAX_SNAPSHOT_BYTES) {
          parser.abort(new ShedError("PAYLOAD_TOO_LARGE", `credential ${name} is larger than live sync handles`));
          return;
        }
        chunks.push(d);
      });
      entry.on("end", () => {
        const data = Buffer.concat(chunks);
        files.set(rel, { hash: hashOf(data), mode: (entry.mode ?? 0o600) & 0o7777, data });
      });
    });
    parser.on("error", reject);
    parser.on("abort", reject);
    parser.on("close", () => resolve(files));
    archive.on("error", reject);
    archive.pipe(parser);
  });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
