/** Docker object names and labels for a shed. Labels make Docker the source of truth. */
export const LABEL = {
  managed: "dev.shed.managed",
  name: "dev.shed.name",
  backend: "dev.shed.backend",
  image: "dev.shed.image",
  createdAt: "dev.shed.created-at",
  repo: "dev.shed.repo",
  localDir: "dev.shed.local-dir",
  /** On volumes other than the workspace: what the volume holds. */
  role: "dev.shed.role",
} as const;

export const containerName = (name: string): string => `shed-${name}`;
export const volumeName = (name: string): string => `shed-${name}-workspace`;
