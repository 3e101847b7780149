import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HOOK_NAMES, type HookName } from "../config/provision-file.js";
import { type HookRun, hookLogPath } from "../guest/hook-runner.js";

/**
 * What the server remembers about a shed beyond what the backend knows:
 * create warnings, the provision file's warnings and env, the PATH entries the
 * install added, and each hook's last run. One JSON file per shed, written
 * atomically, so a crash never leaves half a file; it survives server
 * restarts. Existence and state always come from the backend.
 */
export interface ShedMeta {
  warnings: string[];
  provision: {
    found: boolean;
    warnings: string[];
    env: Record<string, string>;
    path_added: string[];
    path_image: string[];
    path_baseline?: string[];
  };
  hooks: Record<HookName, HookRun>;
}

export function emptyMeta(): ShedMeta {
  return {
    warnings: [],
    provision: { found: false, warnings: [], env: {}, path_added: [], path_image: [] },
    hooks: Object.fromEntries(HOOK_NAMES.map((h) => [h, { state: "never_run", log: hookLogPath(h) }])) as Record<
      HookName,
      HookRun
    >,
  };
}

export class MetaStore {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "sheds");
    mkdirSync(this.dir, { recursive: true });
  }

  read(name: string): ShedMeta {
    const meta = emptyMeta();
    try {
      const parsed = JSON.parse(readFileSync(this.file(name), "utf8")) as Partial<ShedMeta>;
      if (Array.isArray(parsed.warnings)) meta.warnings = parsed.warnings.map(String);
      if (parsed.provision) meta.provision = { ...meta.provision, ...parsed.provision };
      if (parsed.hooks) meta.hooks = { ...meta.hooks, ...parsed.hooks };
    } catch {
      // No record yet (or unreadable): defaults.
    }
    return meta;
  }

  update(name: string, change: (meta: ShedMeta) => void): ShedMeta {
    const meta = this.read(name);
    change(meta);
    const tmp = `${this.file(name)}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file(name));
    return meta;
  }

  /** Whether this server holds a record of the shed (what adopts a shed made before server ids). */
  has(name: string): boolean {
    return existsSync(this.file(name));
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }

  /**
   * After a server restart, a hook recorded as running was cut off with the
   * server: say so instead of showing "running" forever.
   */
  reconcile(): void {
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith(".json")) continue;
      const name = f.slice(0, -5);
      const meta = this.read(name);
      if (!HOOK_NAMES.some((h) => meta.hooks[h].state === "running")) continue;
      this.update(name, (m) => {
        for (const h of HOOK_NAMES) {
          if (m.hooks[h].state === "running") {
            m.hooks[h] = { ...m.hooks[h], state: "failed", message: "interrupted: shed-server stopped while it ran" };
          }
        }
      });
    }
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }
}
