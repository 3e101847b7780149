import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { DevcontainerPlan } from "../config/devcontainer/map.js";
import { HOOK_NAMES, type HookName } from "../config/provision-file.js";
import { writeFileAtomic } from "../core/atomic-file.js";
import type { BackendName } from "../core/types.js";
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
    /** Where the hooks came from when it is not .shed/provision.yaml: devcontainer.json's path. */
    source?: string;
  };
  /** devcontainer.json as read at create (issue 13): used when the workspace has no provision.yaml. */
  devcontainer?: DevcontainerPlan;
  hooks: Record<HookName, HookRun>;
  /** The operation running on the shed and its current step, written before each step (cleared when it ends). */
  operation?: OperationRecord;
  /** An operation the server was killed in, found at its next start (recovery.ts says what it means). */
  interrupted?: InterruptedOperation;
}

export type OperationName = "create" | "start" | "stop" | "delete" | "provision";

export interface OperationRecord {
  op: OperationName;
  step: string;
  started_at: string;
  /** create: the created-at label of everything it makes, which proves an object is this create's. */
  created_at?: string;
  /** The backend the shed is on (recovery acts through it). */
  backend?: BackendName;
  /** create: there was no record of the shed before this create (so the record does not adopt anything). */
  fresh_record?: boolean;
  /** create: the id of the uploaded bundle it clones from, removed by recovery when the server died with it. */
  bundle?: string;
  /** delete: whether the workspace is kept (`--keep-volume`). */
  keep_volume?: boolean;
  /** delete: a --local-dir shed, which never removes a workspace volume. */
  local_dir?: boolean;
}

export interface InterruptedOperation {
  op: OperationName;
  step: string;
  /** When the interrupted operation started. */
  started_at: string;
}

/** A workspace kept on purpose by `delete --keep-volume` (what a backend wrote on its objects cannot record that later). */
export interface KeptWorkspace {
  kept_at: string;
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
  private readonly keptDir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, "sheds");
    this.keptDir = join(dataDir, "kept");
    mkdirSync(this.dir, { recursive: true });
    mkdirSync(this.keptDir, { recursive: true });
  }

  read(name: string): ShedMeta {
    const meta = emptyMeta();
    try {
      const parsed = JSON.parse(readFileSync(this.file(name), "utf8")) as Partial<ShedMeta>;
      if (Array.isArray(parsed.warnings)) meta.warnings = parsed.warnings.map(String);
      if (parsed.provision) meta.provision = { ...meta.provision, ...parsed.provision };
      if (parsed.hooks) meta.hooks = { ...meta.hooks, ...parsed.hooks };
      if (parsed.operation) meta.operation = parsed.operation;
      if (parsed.devcontainer) meta.devcontainer = parsed.devcontainer;
      if (parsed.interrupted) meta.interrupted = parsed.interrupted;
    } catch {
      // No record yet (or unreadable): defaults.
    }
    return meta;
  }

  update(name: string, change: (meta: ShedMeta) => void): ShedMeta {
    const meta = this.read(name);
    change(meta);
    // fsynced before the rename: after a crash the record is the old one or the new one, never empty.
    writeFileAtomic(this.file(name), `${JSON.stringify(meta, null, 2)}\n`);
    return meta;
  }

  /** Names of every shed this server holds a record of. */
  names(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.slice(0, -5));
  }

  markKept(name: string): void {
    writeFileAtomic(this.keptFile(name), `${JSON.stringify({ kept_at: new Date().toISOString() })}\n`);
  }

  /** Whether the shed's workspace volume was kept on purpose by `delete --keep-volume`. */
  kept(name: string): KeptWorkspace | undefined {
    try {
      const parsed = JSON.parse(readFileSync(this.keptFile(name), "utf8")) as Partial<KeptWorkspace>;
      return { kept_at: String(parsed.kept_at ?? "") };
    } catch {
      return undefined;
    }
  }

  unmarkKept(name: string): void {
    rmSync(this.keptFile(name), { force: true });
  }

  /**
   * Whether this server holds a record of the shed (what adopts a shed made before server ids).
   * The record a create makes for itself while it runs does not count: it must not adopt an old
   * unlabelled volume or container of that name that nobody recorded.
   */
  has(name: string): boolean {
    if (!existsSync(this.file(name))) return false;
    const op = this.read(name).operation;
    return !(op?.op === "create" && op.fresh_record === true);
  }

  remove(name: string): void {
    rmSync(this.file(name), { force: true });
  }

  /**
   * After a server restart (the data_dir lock is held, so no other server
   * writes here): an operation still recorded as running was cut off with the
   * server, and so was a hook recorded as running: say so instead of showing
   * them healthy or "running" forever. Temp files of writes cut off are removed.
   */
  reconcile(): void {
    for (const dir of [this.dir, this.keptDir]) {
      for (const f of readdirSync(dir)) if (f.endsWith(".tmp")) rmSync(join(dir, f), { force: true });
    }
    for (const name of this.names()) {
      const meta = this.read(name);
      if (!meta.operation && !HOOK_NAMES.some((h) => meta.hooks[h].state === "running")) continue;
      this.update(name, (m) => {
        for (const h of HOOK_NAMES) {
          if (m.hooks[h].state === "running") {
            m.hooks[h] = { ...m.hooks[h], state: "failed", message: "interrupted: shed-server stopped while it ran" };
          }
        }
        if (m.operation) {
          m.interrupted = { op: m.operation.op, step: m.operation.step, started_at: m.operation.started_at };
        }
      });
    }
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  private keptFile(name: string): string {
    return join(this.keptDir, `${name}.json`);
  }
}
