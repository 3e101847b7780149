import type { BackendName, Shed } from "../core/types.js";
import type { PlannedCredential } from "../guest/credentials.js";
import type { GuestExec } from "../guest/exec.js";
import type { BackendCapabilities } from "./capabilities.js";

/** Everything a backend needs to make a new shed. */
export interface CreateSpec {
  name: string;
  image: string;
  /** Host directory mounted at /workspace instead of a fresh volume (no clone). */
  localDir?: string;
  /** Repository URL as shown to people (credentials removed). */
  repoDisplay?: string;
  /**
   * Credentials whose source exists, each with its mode (direct bind mount or
   * staged copy, see src/guest/credentials.ts); missing ones were already
   * turned into warnings.
   */
  credentials: PlannedCredential[];
  env: Record<string, string>;
  createdAt: string;
}

/** What a backend made in the storage step, so a fatal failure undoes only that. */
export interface StorageResult {
  created: boolean;
  /** True when the workspace came back from an earlier shed (delete --keep-volume). */
  reused: boolean;
}

export interface RemoveOptions {
  keepVolume: boolean;
}

/**
 * One backend = one column of the seed's lifecycle tables. Each method is one
 * cell; the lifecycle module orders them and decides what is fatal.
 */
export interface Backend {
  readonly name: BackendName;
  readonly capabilities: BackendCapabilities;

  /** Create step 1. */
  prepareStorage(spec: CreateSpec): Promise<StorageResult>;
  /** Undo of step 1 after a fatal failure (never touches a --local-dir). */
  removeStorage(name: string): Promise<void>;
  /** Create step 2: create and start the container or VM, wait until exec works. */
  createAndStart(spec: CreateSpec): Promise<void>;
  /** Start step 1 for an existing, stopped shed. */
  start(name: string): Promise<void>;
  /** Stop step 3: the process stop (SIGTERM, then SIGKILL after the timeout). */
  stop(name: string, timeoutMs: number): Promise<void>;
  /** Removes the container or VM (and the workspace unless kept). Idempotent. */
  remove(name: string, opts: RemoveOptions): Promise<void>;

  get(name: string): Promise<Shed | undefined>;
  list(): Promise<Shed[]>;
  guest(name: string): GuestExec;
  /** Checks the backend is usable (engine reachable); throws BACKEND_ERROR with a hint. */
  ping(): Promise<void>;
}
