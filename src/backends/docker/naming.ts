/** Docker object names and labels for a shed. Labels make Docker the source of truth. */
export const LABEL = {
  managed: "dev.shed.managed",
  name: "dev.shed.name",
  backend: "dev.shed.backend",
  image: "dev.shed.image",
  createdAt: "dev.shed.created-at",
  repo: "dev.shed.repo",
  localDir: "dev.shed.local-dir",
  /**
   * The id of the shed-server that made the object (data_dir/server_id): a server acts only on its
   * own. Objects made before this label existed have none (see ownership.ts for who may adopt them).
   */
  serverId: "dev.shed.server-id",
  /**
   * The limits the container was made with (`shed create --cpus --memory`), for `shed list`;
   * absent when none was asked for, and on containers made before sizes existed.
   */
  cpus: "dev.shed.cpus",
  memoryMiB: "dev.shed.memory-mib",
  /** On volumes other than the workspace: what the volume holds. */
  role: "dev.shed.role",
} as const;

export const containerName = (name: string): string => `shed-${name}`;
export const volumeName = (name: string): string => `shed-${name}-workspace`;
