import { cpus as hostCpuList, totalmem } from "node:os";
import type { RequestedSize } from "../backends/backend.js";
import { ShedError } from "../core/errors.js";
import type { CreateShedRequest } from "../protocol/api-types.js";

/** What this host has, which no request may exceed (a parameter so tests can pose as a bigger or smaller host). */
export interface HostSize {
  cpus: number;
  memoryBytes: number;
}

export function thisHost(): HostSize {
  return { cpus: hostCpuList().length, memoryBytes: totalmem() };
}

/** The request's fields and the `shed create` flags they come from, for messages people can act on. */
const FIELDS = {
  cpus: { flag: "--cpus", unit: "" },
  memory_mib: { flag: "--memory", unit: " MiB" },
  disk_gib: { flag: "--disk", unit: " GiB" },
} as const;

/**
 * The size a create asked for, checked before anything is made, whatever the backend: whole
 * numbers of at least 1, and no more CPUs or memory than this host has (a VM given more would
 * thrash or fail to start; a container's limit above the host is no limit). What a backend
 * allows on top of that (a VM's 128 MiB floor, VZ's ceilings, no --disk on Docker) is its own
 * checkCreate's.
 */
export function checkSizeRequest(
  req: Pick<CreateShedRequest, "cpus" | "memory_mib" | "disk_gib">,
  host: HostSize = thisHost(),
): RequestedSize {
  for (const field of Object.keys(FIELDS) as (keyof typeof FIELDS)[]) {
    const value = req[field];
    if (value === undefined) continue;
    const { flag, unit } = FIELDS[field];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ShedError("INVALID_REQUEST", `${flag} ${value}: ${field} must be a whole number of at least 1${unit}`, {
        hint: `give ${flag} a whole number${unit ? ` of${unit}` : ""}, e.g. ${flag} ${field === "memory_mib" ? 2048 : field === "disk_gib" ? 20 : 2}`,
        details: { field, value },
      });
    }
  }
  if (req.cpus !== undefined && req.cpus > host.cpus) {
    throw new ShedError(
      "INVALID_REQUEST",
      `--cpus ${req.cpus} is more than this host has: ${host.cpus} CPU${host.cpus === 1 ? "" : "s"}`,
      { hint: `ask for at most ${host.cpus}`, details: { field: "cpus", value: req.cpus, host: host.cpus } },
    );
  }
  const hostMiB = Math.floor(host.memoryBytes / 1024 ** 2);
  if (req.memory_mib !== undefined && req.memory_mib > hostMiB) {
    throw new ShedError(
      "INVALID_REQUEST",
      `--memory ${req.memory_mib} MiB is more than this host has: ${hostMiB} MiB`,
      {
        hint: `ask for at most ${hostMiB} MiB`,
        details: { field: "memory_mib", value: req.memory_mib, host: hostMiB },
      },
    );
  }
  return {
    ...(req.cpus !== undefined ? { cpus: req.cpus } : {}),
    ...(req.memory_mib !== undefined ? { memoryMiB: req.memory_mib } : {}),
    ...(req.disk_gib !== undefined ? { diskGiB: req.disk_gib } : {}),
  };
}
