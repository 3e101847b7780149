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

/**
 * What createAndStart made, so that undoing a failed create removes exactly
 * that object (by its id) and never whatever holds the shed's name by then.
 */
export interface CreatedHandle {
  readonly id: string;
}

/** Which objects a backend may act on: its server's own, and old ones this server adopts. */
export interface Ownership {
  /** This server's id, written on everything the backend makes. */
  serverId: string;
  /**
   * Whether an object made by a Shed version without server ids (so it carries
   * none) is this server's. The lifecycle answers it: the server that holds the
   * shed's record made it.
   */
  adopts(name: string): boolean;
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
  /** Undo of step 1 after a fatal failure (never touches a --local-dir, nor storage that is not this server's). */
  removeStorage(name: string): Promise<void>;
  /**
   * Create step 2: create and start the container or VM. When it throws, it has
   * already removed what it made; refuses (SHED_NOT_OWNED) when the name is taken
   * by an object that is not this server's.
   */
  createAndStart(spec: CreateSpec): Promise<CreatedHandle>;
  /** Undo of step 2: removes exactly the object createAndStart returned, by id. Idempotent. */
  removeCreated(handle: CreatedHandle): Promise<void>;
  /** Start step 1 for an existing, stopped shed. */
  start(name: string): Promise<void>;
  /** Stop step 3: the process stop (SIGTERM, then SIGKILL after the timeout). */
  stop(name: string, timeoutMs: number): Promise<void>;
  /** Removes the container or VM (and the workspace unless kept; never for a --local-dir shed). Idempotent. */
  remove(name: string, opts: RemoveOptions): Promise<void>;
  /**
   * Undoes a create the server was killed in before it finished its first steps:
   * removes the container and the workspace made by the create whose created-at
   * is `createdAt`, and nothing else (not a workspace it reused). Idempotent.
   */
  removeLeftovers(name: string, createdAt: string): Promise<void>;

  /**
   * This server's shed of that name (owner "this_server"), or one made by an older
   * Shed that no server has adopted (owner "unowned": shown, never acted on).
   * Another server's shed, or an object not made by Shed, is undefined.
   * start, stop and remove act only on this server's own and refuse the rest.
   */
  get(name: string): Promise<Shed | undefined>;
  /** What get would return, for every shed on the backend. */
  list(): Promise<Shed[]>;
  guest(name: string): GuestExec;
  /** Checks the backend is usable (engine reachable); throws BACKEND_ERROR with a hint. */
  ping(): Promise<void>;
}
