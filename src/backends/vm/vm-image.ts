import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { ShedError } from "../../core/errors.js";

export type VmArch = "x86_64" | "arm64";

/** A built VM image (scripts/build-vm-image.sh): the files a hypervisor boots. */
export interface VmImage {
  dir: string;
  arch: VmArch;
  rootfs: string;
  kernel: string;
  initrd: string;
  /** The uncompressed kernel (ELF) Firecracker boots; only x86_64 builds have it. */
  vmlinux?: string;
  /** The uncompressed arm64 kernel (`Image`) VZ boots; only arm64 builds have it. */
  armImage?: string;
  manifest: Record<string, unknown>;
}

export function defaultImagesDir(): string {
  return process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";
}

export function hostArch(): VmArch {
  return process.arch === "arm64" ? "arm64" : "x86_64";
}

/**
 * The image directory `<imageName>-<arch>` under imagesDir, checked for every file every VM backend needs.
 * That name is a symlink to the current build (scripts/build-vm-image.sh), which a rebuild moves;
 * `dir` is where it points now, the immutable build itself. An overlay made with the symlink's
 * path as its backing file would silently read the next build's disk under its own blocks.
 */
export function resolveVmImage(
  imagesDir = defaultImagesDir(),
  arch: VmArch = hostArch(),
  imageName = "shed-vm",
): VmImage {
  const named = resolve(imagesDir, `${imageName}-${arch}`);
  const dir = existsSync(named) ? realpathSync(named) : named;
  const files = { rootfs: "rootfs.ext4", kernel: "vmlinuz", initrd: "initrd.img", manifest: "manifest.json" };
  const missing = Object.values(files).filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0) {
    throw new ShedError("IMAGE_NOT_FOUND", `the VM image ${dir} is missing ${missing.join(", ")}`, {
      hint: "build it on the server host with `npm run build-vm-image` (or set SHED_VM_IMAGES to where it was built)",
      details: { image_dir: dir, missing },
    });
  }
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(readFileSync(join(dir, files.manifest), "utf8")) as Record<string, unknown>;
  } catch {
    throw new ShedError("IMAGE_NOT_FOUND", `the VM image manifest ${join(dir, files.manifest)} is not valid JSON`, {
      hint: "rebuild the image with `npm run build-vm-image`",
    });
  }
  return {
    dir,
    arch,
    rootfs: join(dir, files.rootfs),
    kernel: join(dir, files.kernel),
    initrd: join(dir, files.initrd),
    ...(existsSync(join(dir, "vmlinux")) ? { vmlinux: join(dir, "vmlinux") } : {}),
    ...(existsSync(join(dir, "Image")) ? { armImage: join(dir, "Image") } : {}),
    manifest,
  };
}
