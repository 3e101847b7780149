import { statSync } from "node:fs";
import type { VmConfig } from "../../config/server-config.js";
import { ShedError } from "../../core/errors.js";
import type { RequestedSize } from "../backend.js";
import type { VmImage } from "./vm-image.js";

/** The size a VM is made with: what the create asked for, else the server config's vm_cpus, vm_memory, vm_disk. */
export interface VmSize {
  cpus: number;
  memoryMiB: number;
  /** undefined: the disk stays as large as the image's root filesystem. */
  diskBytes: number | undefined;
}

/** A hypervisor's ceilings (VZ: 32 CPUs and 256 GiB; Firecracker: 32 vCPUs). */
export interface VmSizeLimits {
  maxCpus?: number;
  maxMemoryMiB?: number;
}

/** Below this a VM's kernel, init and agent do not fit (the seed's floor for every VM backend). */
export const VM_MIN_MEMORY_MIB = 128;

export function resolveVmSize(size: RequestedSize, vm: Pick<VmConfig, "cpus" | "memoryBytes" | "diskBytes">): VmSize {
  return {
    cpus: size.cpus ?? vm.cpus,
    memoryMiB: size.memoryMiB ?? Math.floor(vm.memoryBytes / 1024 ** 2),
    diskBytes: size.diskGiB !== undefined ? size.diskGiB * 1024 ** 3 : vm.diskBytes,
  };
}

/**
 * Refuses, before anything is made, a size this backend cannot boot: under 128 MiB, above the
 * hypervisor's ceilings, or a disk smaller than the image's root filesystem (a disk only grows:
 * shrinking it would cut off the files on it). Each message names where the value came from.
 */
export function checkVmSize(
  backend: string,
  size: RequestedSize,
  resolved: VmSize,
  image: Pick<VmImage, "rootfs">,
  limits: VmSizeLimits = {},
): void {
  const from = (flag: string, asked: number | undefined, key: string) =>
    asked !== undefined ? `${flag} ${asked}` : `${key} in the server config`;
  if (resolved.memoryMiB < VM_MIN_MEMORY_MIB) {
    throw new ShedError(
      "INVALID_REQUEST",
      `${from("--memory", size.memoryMiB, "vm_memory")}: a ${backend} VM needs at least ${VM_MIN_MEMORY_MIB} MiB; ${resolved.memoryMiB} MiB was asked for`,
      { hint: `ask for ${VM_MIN_MEMORY_MIB} MiB or more`, details: { field: "memory_mib", value: resolved.memoryMiB } },
    );
  }
  if (limits.maxCpus !== undefined && resolved.cpus > limits.maxCpus) {
    throw new ShedError(
      "INVALID_REQUEST",
      `${from("--cpus", size.cpus, "vm_cpus")}: the ${backend} backend takes at most ${limits.maxCpus} CPUs; ${resolved.cpus} were asked for`,
      {
        hint: `ask for at most ${limits.maxCpus}`,
        details: { field: "cpus", value: resolved.cpus, max: limits.maxCpus },
      },
    );
  }
  if (limits.maxMemoryMiB !== undefined && resolved.memoryMiB > limits.maxMemoryMiB) {
    throw new ShedError(
      "INVALID_REQUEST",
      `${from("--memory", size.memoryMiB, "vm_memory")}: the ${backend} backend takes at most ${limits.maxMemoryMiB} MiB (${limits.maxMemoryMiB / 1024} GiB); ${resolved.memoryMiB} MiB was asked for`,
      {
        hint: `ask for at most ${limits.maxMemoryMiB} MiB`,
        details: { field: "memory_mib", value: resolved.memoryMiB, max: limits.maxMemoryMiB },
      },
    );
  }
  if (resolved.diskBytes !== undefined) {
    const imageBytes = statSync(image.rootfs).size;
    if (resolved.diskBytes < imageBytes) {
      const gib = (b: number) => `${Math.round((b / 1024 ** 3) * 100) / 100} GiB`;
      throw new ShedError(
        "INVALID_REQUEST",
        `${from("--disk", size.diskGiB, "vm_disk")}: the disk would be smaller than the image's root filesystem (${gib(resolved.diskBytes)} < ${gib(imageBytes)}, ${image.rootfs})`,
        {
          hint: `ask for at least ${Math.ceil(imageBytes / 1024 ** 3)} GiB, or leave --disk out for the image's own size`,
          details: { field: "disk_gib", value: resolved.diskBytes / 1024 ** 3, image_gib: imageBytes / 1024 ** 3 },
        },
      );
    }
  }
}
