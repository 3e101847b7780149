import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

const MAX_AGE_MS = 60 * 60 * 1000;

/**
 * Git bundles uploaded by the CLI for `--repo <local path>`. Each is a file in
 * data_dir/bundles named by a random id, used once by a create, and swept an
 * hour after upload.
 */
export class BundleStore {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "bundles");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  async put(body: Readable): Promise<string> {
    this.sweep();
    const id = randomBytes(16).toString("hex");
    await pipeline(body, createWriteStream(this.path(id), { mode: 0o600 }));
    return id;
  }

  resolve(id: string): string | undefined {
    if (!/^[a-f0-9]{32}$/.test(id)) return undefined;
    return existsSync(this.path(id)) ? this.path(id) : undefined;
  }

  remove(id: string): void {
    rmSync(this.path(id), { force: true });
  }

  private sweep(): void {
    for (const f of readdirSync(this.dir)) {
      const p = join(this.dir, f);
      if (Date.now() - statSync(p).mtimeMs > MAX_AGE_MS) rmSync(p, { force: true });
    }
  }

  private path(id: string): string {
    return join(this.dir, `${id}.bundle`);
  }
}
