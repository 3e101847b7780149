import { z } from "zod";

/**
 * Images Shed builds (`shed image build`): one NAME for two forms, the Docker image `NAME:latest`
 * and the VM image (the ext4 root filesystem under vm_images_dir, `NAME-<arch>`). A Docker
 * repository name and a VM image folder name at once, so: lower case, digits, single . _ - between.
 */
export const IMAGE_NAME_RE = /^[a-z0-9]+([._-][a-z0-9]+)*$/;
export const IMAGE_NAME_MAX = 64;

export const imageNameSchema = z
  .string()
  .max(IMAGE_NAME_MAX)
  .regex(IMAGE_NAME_RE, { message: "an image name uses a-z, 0-9 and single . _ - between them" });

/** POST /api/images: build NAME from an uploaded context (a tar, PUT /api/bundles). */
export const buildImageRequestSchema = z
  .object({
    name: imageNameSchema,
    /** The upload id of the build context (a tar of the directory). */
    context: z.string().regex(/^[a-f0-9]{32}$/, { message: "not an upload id" }),
    /** The Dockerfile's path inside the context. */
    dockerfile: z.string().min(1).max(4096),
    /** Where the context came from, for people (`shed image list`'s SOURCE). */
    source: z.string().max(4096),
    /** Build again even when the context's content is what the last build was made from. */
    no_cache: z.boolean().optional(),
  })
  .strict();

export type BuildImageRequest = z.infer<typeof buildImageRequestSchema>;

/** One image as GET /api/images shows it. */
export interface ImageInfo {
  name: string;
  /** `shed image build` (the context), the server config (default_image, vm_image), or a shed that names it. */
  source: string;
  /** `built` by shed image build, `config` for the server's defaults, `external` for one only a shed names. */
  kind: "built" | "config" | "external";
  docker?: { ref: string; id: string; bytes: number };
  vm?: { dir: string; bytes: number };
  /** The sheds that use it (either form). */
  sheds: string[];
  context_hash?: string;
  built_at?: string;
}

export interface ImageListResponse {
  images: ImageInfo[];
}

export interface ImagePruneResponse {
  dry_run: boolean;
  /** What was (or would be) removed, one line each. */
  removed: string[];
}
