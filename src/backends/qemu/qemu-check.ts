import { accessSync, constants, existsSync, readFileSync, realpathSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { ShedError } from "../../core/errors.js";

/**
 * Fail-fast checks for `--backend qemu`: say at once what is missing and how to get it, instead of
 * failing half-way through a create with a spawn error.
 */

export function findOnPath(program: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const REQUIRED_PROGRAMS = [
  { program: "qemu-system-x86_64", packages: "qemu-system-x86 qemu-utils" },
  { program: "qemu-img", packages: "qemu-utils" },
  // The guest's network (qemu-network.ts): pasta, and unshare for QEMU's own namespace.
  { program: "pasta", packages: "passt" },
  { program: "unshare", packages: "util-linux" },
] as const;

/** Throws BACKEND_NOT_ENABLED naming the Debian packages when QEMU, qemu-img, pasta or unshare is missing. */
export function checkQemuInstalled(path = process.env.PATH ?? ""): void {
  const missing = REQUIRED_PROGRAMS.filter((p) => findOnPath(p.program, path) === undefined);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.flatMap((m) => m.packages.split(" ")))].join(" ");
  throw new ShedError(
    "BACKEND_NOT_ENABLED",
    `the qemu backend needs ${missing.map((m) => m.program).join(", ")}, not found on the server's PATH`,
    {
      hint: `install them on the server host: apt-get install ${packages}`,
      details: { missing: missing.map((m) => m.program) },
    },
  );
}

export type VmArch = "x86_64" | "arm64";

/** A built VM image (scripts/build-vm-image.sh): the files QEMU boots. */
export interface VmImage {
  dir: string;
  arch: VmArch;
  rootfs: string;
  kernel: string;
  initrd: string;
  manifest: Record<string, unknown>;
}

export function defaultImagesDir(): string {
  return process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";
}

export function hostArch(): VmArch {
  return process.arch === "arm64" ? "arm64" : "x86_64";
}

/**
 * The image directory `<imageName>-<arch>` under imagesDir, checked for every file QEMU needs.
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
    manifest,
  };
}
