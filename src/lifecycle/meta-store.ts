import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * What the server remembers about a shed beyond what the backend knows:
 * warnings from create (and, later, hook runs). One JSON file per shed,
 * written atomically, so a crash never leaves half a file. Existence and state
 * always come from the backend; a record without a shed is dropped on read.
 */
export interface ShedMeta {
  warnings: string[];
}

export class MetaStore {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "sheds");
    mkdirSync(this.dir, { recursive: true });
  }

  read(name: string): ShedMeta {
    try {
      const parsed = JSON.parse(readFileSync(this.file(name), "utf8")) as Partial<ShedMeta>;
      return { warnings: Array.isArray(parsed.warnings) ? parsed.warnings.map(String) : [] };
    } catch {
      return { warnings: [] };
    }
  }

  write(name: string, meta: ShedMeta): void {
    const tmp = `${this.file(name)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file(name));
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }
}
