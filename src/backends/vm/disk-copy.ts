import { execFile } from "node:child_process";
import { stat, truncate } from "node:fs/promises";
import { promisify } from "node:util";
import { ShedError } from "../../core/errors.js";

const execFileAsync = promisify(execFile);

/**
 * The argv that copies a base disk image into an instance directory as cheaply as the filesystem
 * allows: a reflink on Linux (btrfs, XFS: instant, shares blocks until written; elsewhere a sparse
 * copy), a clonefile on macOS (APFS). The base is never written.
 */
export function diskCopyArgv(source: string, target: string, platform: NodeJS.Platform = process.platform): string[] {
  return platform === "darwin"
    ? ["cp", "-c", "--", source, target]
    : ["cp", "--reflink=auto", "--sparse=always", "--", source, target];
}

export async function copyDisk(source: string, target: string): Promise<void> {
  const [program, ...args] = diskCopyArgv(source, target);
  await execFileAsync(program as string, args, { timeout: 10 * 60_000 }).catch(
    (err: { stderr?: string; message: string }) => {
      throw new ShedError(
        "BACKEND_ERROR",
        `could not copy the VM image's disk ${source} to ${target}: ${(err.stderr || err.message).trim()}`,
        { hint: "check that the image is readable and the data_dir has room for a copy of it" },
      );
    },
  );
}

/**
 * Makes a raw disk file `bytes` long (sparse: the new part takes no space until written). Only
 * grows: the guest's resize2fs then grows its filesystem to match (grow-disk.ts).
 */
export async function growDiskFile(file: string, bytes: number): Promise<void> {
  if ((await stat(file)).size >= bytes) return;
  await truncate(file, bytes).catch((err: Error) => {
    throw new ShedError("BACKEND_ERROR", `could not grow the VM disk ${file} to ${bytes} bytes: ${err.message}`, {
      hint: "check that the data_dir's filesystem allows files of that size",
    });
  });
}
