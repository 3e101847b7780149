import { z } from "zod";
import { durationString } from "../core/duration-schema.js";
import { BACKENDS, type Shed } from "../core/types.js";

/** Bodies of the HTTP API, validated on the server with the same schemas the CLI is typed by. */
export const createShedRequestSchema = z
  .object({
    name: z.string(),
    /** A git URL cloned inside the shed. */
    repo: z.string().min(1).optional(),
    /** An uploaded git bundle (PUT /api/bundles) made from a local checkout. */
    repo_bundle: z
      .string()
      .regex(/^[a-f0-9]{32}$/, { message: "not a bundle id" })
      .optional(),
    /** How to show the bundle's origin to people (the local path). */
    repo_label: z.string().max(4096).optional(),
    /** The local checkout's own `origin` remote, set on the clone. */
    repo_origin: z.string().max(4096).optional(),
    /**
     * Credentials for the http(s) URL of `repo` (or `repo_origin`), kept out of
     * every command line (the CLI reads them from SHED_REPO_TOKEN). The server
     * hands them to git through a credential store in the shed; it never
     * echoes, logs or records them.
     */
    repo_credentials: z
      .object({ username: z.string().min(1).max(1024), password: z.string().min(1).max(16_384) })
      .strict()
      .optional(),
    local_dir: z.string().min(1).optional(),
    image: z.string().min(1).optional(),
    backend: z.enum(BACKENDS).optional(),
    no_provision: z.boolean().optional(),
    /**
     * devcontainer.json as the CLI read it from a local checkout (issue 13):
     * used when the repository has no .shed/provision.yaml. local_env holds
     * only the variables the file names as ${localEnv:VAR}.
     */
    devcontainer: z
      .object({
        path: z.string().min(1).max(1024),
        text: z.string().max(256 * 1024),
        local_env: z.record(z.string().max(256), z.string().max(64 * 1024)).optional(),
        workspace_basename: z.string().max(1024).optional(),
      })
      .strict()
      .optional(),
    /**
     * For a repo URL: fetch it shallowly on the server's host first and read its
     * devcontainer.json there (name: which one, when it has several).
     */
    devcontainer_lookup: z
      .object({ name: z.string().min(1).max(1024).optional() })
      .strict()
      .optional(),
    timeout: durationString.optional(),
    /**
     * The shed's size (`shed create --cpus --memory --disk`); unset: the server config's vm_cpus,
     * vm_memory, vm_disk for a VM, no limit on Docker. Any number here: the server checks them
     * (src/lifecycle/size-request.ts) with messages that name the flag and the value.
     */
    cpus: z.number().optional(),
    memory_mib: z.number().optional(),
    disk_gib: z.number().optional(),
  })
  .strict();

export type CreateShedRequest = z.infer<typeof createShedRequestSchema>;

export const provisionRequestSchema = z
  .object({ hook: z.enum(["install", "startup", "shutdown"]).optional() })
  .strict();

export const registerKeyRequestSchema = z.object({ public_key: z.string().min(1).max(16_384) }).strict();

export interface ServerInfo {
  name: string;
  version: string;
  http_port: number;
  ssh_port: number;
  ssh_host_key: string;
  enabled_backends: string[];
  default_backend: string;
  default_image: string;
  /** Each enabled backend's row of the seed's "Backend Differences at a Glance" table (src/backends/capabilities.ts). */
  capabilities?: Record<string, Record<string, string | false>>;
}

export interface ShedListResponse {
  sheds: Shed[];
}
