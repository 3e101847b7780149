import { ShedError } from "../core/errors.js";
import type { CreateShedRequest } from "../protocol/api-types.js";

export interface SizeFlags {
  cpus?: string;
  memory?: string;
  disk?: string;
}

/**
 * `shed create --cpus N --memory MiB --disk GiB` as the request's fields. Only the shape is
 * checked here (a whole number): the server decides what fits, against its backend and host.
 */
export function sizeRequest(flags: SizeFlags): Pick<CreateShedRequest, "cpus" | "memory_mib" | "disk_gib"> {
  const out: Pick<CreateShedRequest, "cpus" | "memory_mib" | "disk_gib"> = {};
  if (flags.cpus !== undefined) out.cpus = wholeNumber("--cpus", flags.cpus, "a number of CPUs, e.g. --cpus 2");
  if (flags.memory !== undefined)
    out.memory_mib = wholeNumber("--memory", flags.memory, "a number of MiB, e.g. --memory 2048");
  if (flags.disk !== undefined) out.disk_gib = wholeNumber("--disk", flags.disk, "a number of GiB, e.g. --disk 20");
  return out;
}

function wholeNumber(flag: string, value: string, what: string): number {
  if (!/^[0-9]{1,9}$/.test(value)) {
    throw new ShedError("INVALID_REQUEST", `${flag} ${JSON.stringify(value)} is not a whole number`, {
      hint: `give ${what}`,
      details: { flag, value },
    });
  }
  return Number(value);
}
