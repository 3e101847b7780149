import type { CredentialConfig } from "../config/server-config.js";
import type { Warn } from "../core/events.js";
import type { BackendName, Shed } from "../core/types.js";
import type { GuestExec } from "../guest/exec.js";
import type { GuestUser } from "../guest/guest-user.js";
import type { BackendCapabilities } from "./capabilities.js";

/** A --local-dir as the server checked it (src/lifecycle/local-dir-policy.ts), before anything was made. */
export interface CheckedLocalDir {
  /** As asked for. */
  requested: string;
  /** The real path (symlinks resolved): this is what is checked and mounted. */
  path: string;
  uid: number;
  gid: number;
  mode: number;
  /** Identity of the checked directory (decimal), to verify the mount shows it (src/guest/workspace-identity.ts). */
  dev: string;
  ino: string;
}

/** Everything a backend needs to make a new shed. */
export interface CreateSpec {
  name: string;
  /** Docker: an image on the engine; the VM backends: an image built by `npm run build-vm-image`. */
  image: string;
  /** Host directory mounted at /workspace instead of a fresh workspace (no clone). */
  localDir?: CheckedLocalDir;
  /** Repository URL as shown to people (credentials removed). */
  repoDisplay?: string;
  /** Credentials whose source exists; missing ones were already turned into warnings. */
  credentials: CredentialConfig[];
  env: Record<string, string>;
  createdAt: string;
  /** What the create asked for (checked: whole numbers, at least 1, within the host); unset ones take the backend's default. */
  size: RequestedSize;
  /**
   * devcontainer.json's remoteUser (else containerUser) when it is not shed:
   * the credentials are that user's if the image has it, which is known only
   * once the guest runs (Docker then copies every credential, mounting none live).
   */
  remoteUser?: string;
}

/** `shed create --cpus N --memory MiB --disk GiB`. */
export interface RequestedSize {
  cpus?: number;
  memoryMiB?: number;
  diskGiB?: number;
}

/** What a backend made in the storage step, so a fatal failure undoes only that. */
export interface StorageResult {
  created: boolean;
  /** True when the workspace came back from an earlier shed (delete --keep-volume). */
  reused: boolean;
  /** What was done, for the step's line ("workspace volume created"). */
  message: string;
}

/**
 * What boot made, so that undoing a failed create removes exactly that object
 * (by its id) and never whatever holds the shed's name by then.
 */
export interface CreatedHandle {
  readonly id: string;
  /** What boot did beyond starting, for the start step's message (Docker: "image completed: user shed added (uid 1000, gid 1000); ..."). */
  readonly notes?: readonly string[];
  /** What the user should know about it, each a warning with its hint (Docker: user shed got another uid than 1000, sudo or git missing). */
  readonly warnings?: readonly { message: string; hint?: string }[];
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

/** How a backend did one cell of the seed's tables, for the step's line. */
export type CellResult = { outcome: "done"; message?: string } | { outcome: "skipped"; reason: string };

/**
 * One backend = one column of the seed's lifecycle tables. Each method is one
 * cell that differs between backends; src/lifecycle/ orders them, decides what
 * is fatal, and never asks which backend it has.
 */
export interface Backend {
  readonly name: BackendName;
  /** The seed's "Backend Differences at a Glance" row, as data for the API and docs. */
  readonly capabilities: BackendCapabilities;
  /** The image a create that names none gets (server config: default_image, vm_image). */
  readonly defaultImage: string;

  /** Before anything is made: refuses what this backend cannot do (NOT_SUPPORTED, IMAGE_NOT_FOUND) with a hint. */
  checkCreate(spec: CreateSpec): Promise<void>;

  /** Create step 1: the workspace's storage. */
  prepareStorage(spec: CreateSpec): Promise<StorageResult>;
  /** Undo of step 1 after a fatal failure (never touches a --local-dir, nor storage that is not this server's). */
  removeStorage(name: string): Promise<void>;
  /**
   * Create step 2: create and start the container or VM, and wait until it is
   * ready: commands run in it and Shed's folders exist (src/guest/install-state.ts).
   * When it throws, it has already removed what it made; refuses (SHED_NOT_OWNED)
   * when the name is taken by an object that is not this server's. What it
   * does beyond that (Docker: completing an image without user shed) is
   * reported through onOutput as it happens.
   */
  boot(spec: CreateSpec, onOutput?: (text: string) => void): Promise<CreatedHandle>;
  /** Undo of step 2: removes exactly the object boot returned, by id. Idempotent. */
  removeCreated(handle: CreatedHandle): Promise<void>;
  /** Create step 3 (fatal): the --local-dir at /workspace, user shed given its owner's uid. */
  mountLocalDir(spec: CreateSpec & { localDir: CheckedLocalDir }, warn: Warn): Promise<CellResult>;
  /**
   * Create step 4: the configured credentials in the guest, for `user` (shed,
   * or the remoteUser the image has: targets under /home/shed move to its
   * home; the VM backends keep them user shed's, their image has no other
   * user). One failure is one warning.
   */
  setUpCredentials(spec: CreateSpec, user: GuestUser, warn: Warn): Promise<CellResult>;

  /** Start step 1 for an existing, stopped shed; returns once it is ready, as boot does. */
  start(name: string): Promise<void>;
  /** Start step 2 (fatal): the --local-dir again, where mounts do not outlive a stop. */
  remountLocalDir(shed: Shed): Promise<CellResult>;
  /** Start step 3: credentials again, where the guest does not keep them live. */
  refreshCredentials(
    shed: Shed,
    credentials: readonly CredentialConfig[],
    user: GuestUser,
    warn: Warn,
  ): Promise<CellResult>;

  /** Stop step 2: lets the guest's in-flight operations finish (up to timeoutMs) before the power goes. */
  drain(name: string, timeoutMs: number): Promise<CellResult>;
  /** Stop step 3: the process stop (graceful, then forced after timeoutMs); says how it stopped. */
  stop(name: string, timeoutMs: number): Promise<CellResult>;
  /** Removes the container or VM (and the workspace unless kept; never a --local-dir). Idempotent. */
  remove(name: string, opts: RemoveOptions): Promise<CellResult>;
  /**
   * Undoes a create the server was killed in before it finished its first steps:
   * removes the container or VM and the workspace made by the create whose
   * created-at is `createdAt`, and nothing else (not a workspace it reused). Idempotent.
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
  /** Checks the backend is usable (engine reachable, hypervisor installed); throws BACKEND_ERROR with a hint. */
  ping(): Promise<void>;
  /**
   * Builds devcontainer.json's `build` (issue 13) and returns the image to boot; present only on
   * backends that boot container images. The image is cached by a hash of what went into it.
   */
  buildImage?(req: ImageBuildRequest, onOutput: (text: string) => void): Promise<{ image: string; cached: boolean }>;
  /**
   * devcontainer.json's `image` (issue 13): pulls it when the engine lacks it, its progress
   * through onOutput; a failed pull is IMAGE_NOT_FOUND with the engine's reason. Same backends as buildImage.
   */
  pullImage?(image: string, onOutput: (text: string) => void): Promise<{ pulled: boolean }>;
  /**
   * At server start: takes up again what the previous server left running
   * (sheds outlive it). Returns one line per shed it could not, for the log.
   */
  reattach(credentials: readonly CredentialConfig[]): Promise<string[]>;
}

/** A Dockerfile build (devcontainer.json's build): paths relative to contextDir, a folder on the server's host. */
export interface ImageBuildRequest {
  contextDir: string;
  dockerfile: string;
  args: Record<string, string>;
  target?: string;
}
