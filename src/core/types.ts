/** Domain types shared by server, CLI and API. */

export const BACKENDS = ["docker", "qemu", "firecracker", "vz"] as const;
export type BackendName = (typeof BACKENDS)[number];

/** What the backend reports; "unknown" when it cannot say (e.g. the engine is down). */
export type ShedStatus = "running" | "stopped" | "unknown";

export type ShedOwner = "this_server" | "unowned";

export interface Shed {
  name: string;
  backend: BackendName;
  status: ShedStatus;
  /**
   * "unowned": made by a Shed version without server ids and no server holds its
   * record, so this server shows it but never starts, stops, deletes or execs in it.
   */
  owner: ShedOwner;
  /** For an unowned shed: how to adopt it, or remove it. */
  owner_hint?: string;
  image: string;
  created_at: string;
  /** Where the workspace came from, credentials removed. */
  repo?: string;
  local_dir?: string;
  workspace: "/workspace";
  /**
   * The size it was made with (`shed create --cpus --memory --disk`). Absent where there is no
   * limit (a Docker shed made without them, or before sizes were recorded) or no disk of its own.
   */
  cpus?: number;
  memory_mib?: number;
  disk_gib?: number;
  /** Backend-specific identifiers, for people debugging (container and volume names). */
  resources: Record<string, string>;
  /** Warnings recorded during create (clone failed, credential missing), so `shed list` and `GET` show them later. */
  warnings: string[];
  /** Provisioning: the provision file's state and each hook's last run. */
  provision?: ProvisionStatus;
  /** An operation shed-server was killed in (found at its next start): which step, and how to recover. */
  interrupted?: InterruptedStatus;
}

export interface InterruptedStatus {
  operation: "create" | "start" | "stop" | "delete" | "provision";
  step: string;
  started_at: string;
  /** e.g. "create interrupted at step clone". */
  message: string;
  hint: string;
}

export type HookState = "never_run" | "running" | "succeeded" | "failed" | "timed_out" | "skipped";

export interface HookStatus {
  state: HookState;
  exit_code?: number;
  started_at?: string;
  duration_ms?: number;
  log: string;
  script?: string;
  message?: string;
  tail?: string[];
}

export interface ProvisionStatus {
  file_found: boolean;
  /** provision.yaml problems, as file:line:col: field: message. */
  warnings: string[];
  /** Names of the variables the provision file sets (values are not shown: they may be secrets). */
  env: string[];
  path_added: string[];
  hooks: Record<"install" | "startup" | "shutdown", HookStatus>;
  /** Where the hooks come from when not .shed/provision.yaml: the devcontainer.json path (issue 13). */
  source?: string;
  /** devcontainer.json's forwardPorts (not forwarded by Shed: `shed show` prints the ssh command for each). */
  forward_ports?: string[];
  /** The user the shed's hooks, commands, workspace and credentials belong to, when not shed (devcontainer.json's remoteUser the image has). */
  user?: string;
}

export const WORKSPACE = "/workspace" as const;
export const GUEST_USER = "shed";

/** Environment every process in a shed sees (seed: Environment Variables). */
export function shedBaseEnv(name: string): Record<string, string> {
  return { SHED_CONTAINER: "true", SHED_NAME: name, SHED_WORKSPACE: WORKSPACE };
}
