import type Docker from "dockerode";
import { ShedError } from "../../core/errors.js";
import type { Shed } from "../../core/types.js";
import type { RequestedSize } from "../backend.js";
import { LABEL } from "./naming.js";

/** The engine refuses a memory limit below 6 MiB (its own minimum); said here with the flag instead. */
const DOCKER_MIN_MEMORY_MIB = 6;

/**
 * What a Docker shed can be given: CPU and memory limits. A disk size cannot: the workspace is a
 * named volume, and the local volume driver has no per-volume size (the engine's --storage-opt
 * size works only on some storage drivers, for the container's own layer, not its volumes), so
 * --disk is refused rather than accepted and silently not applied.
 */
export function checkDockerSize(size: RequestedSize): void {
  if (size.diskGiB !== undefined) {
    throw new ShedError("NOT_SUPPORTED", `--disk ${size.diskGiB}: the docker backend cannot limit a shed's disk`, {
      hint: "leave --disk out on Docker (the workspace volume grows as the engine's disk allows), or use a VM backend (--backend qemu)",
      details: { field: "disk_gib", value: size.diskGiB },
    });
  }
  if (size.memoryMiB !== undefined && size.memoryMiB < DOCKER_MIN_MEMORY_MIB) {
    throw new ShedError(
      "INVALID_REQUEST",
      `--memory ${size.memoryMiB} MiB is below Docker's minimum of ${DOCKER_MIN_MEMORY_MIB} MiB`,
      {
        hint: `ask for at least ${DOCKER_MIN_MEMORY_MIB} MiB`,
        details: { field: "memory_mib", value: size.memoryMiB },
      },
    );
  }
}

/** The container limits for a size: NanoCpus (CPUs in billionths) and Memory in bytes; none asked, no limit. */
export function dockerLimits(size: RequestedSize): Pick<Docker.HostConfig, "NanoCpus" | "Memory"> {
  return {
    ...(size.cpus !== undefined ? { NanoCpus: size.cpus * 1e9 } : {}),
    ...(size.memoryMiB !== undefined ? { Memory: size.memoryMiB * 1024 ** 2 } : {}),
  };
}

/** The size a container's labels record; a label that is absent (older sheds) or not a whole number is left out. */
export function sizeFromLabels(labels: Record<string, string>): Pick<Shed, "cpus" | "memory_mib"> {
  const cpus = positiveInt(labels[LABEL.cpus]);
  const memory = positiveInt(labels[LABEL.memoryMiB]);
  return { ...(cpus !== undefined ? { cpus } : {}), ...(memory !== undefined ? { memory_mib: memory } : {}) };
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^[1-9][0-9]{0,9}$/.test(value)) return undefined;
  return Number(value);
}
