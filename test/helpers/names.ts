import { randomBytes } from "node:crypto";

/** Every test object is named with this run's prefix, so cleanup finds all of it and nothing else. */
export const RUN_PREFIX = `t${randomBytes(3).toString("hex")}`;

let counter = 0;
export function uniqueName(label: string): string {
  counter += 1;
  return `${RUN_PREFIX}-${label}-${counter}`.slice(0, 63).replace(/-+$/, "");
}
