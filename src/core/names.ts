import { ShedError } from "./errors.js";
import { quote } from "./quote.js";

/** A shed name: DNS-label-like, so it works as a container name, host alias and SSH user. */
const NAME_RE = /^(?:[a-z]|[a-z][a-z0-9-]*[a-z0-9])$/;
export const MAX_NAME_LENGTH = 63;

/** Whether validateShedName would take this name, without the error (for the CLI's quick path). */
export function isShedName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function validateShedName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new ShedError("INVALID_SHED_NAME", "a shed name is required", {
      hint: "names use lowercase letters, digits and '-', e.g. my-project",
    });
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw new ShedError(
      "INVALID_SHED_NAME",
      `shed name ${quote(name, MAX_NAME_LENGTH + 1)} is ${name.length} characters long; at most ${MAX_NAME_LENGTH} are allowed`,
      { hint: "choose a shorter name" },
    );
  }
  if (!NAME_RE.test(name)) {
    throw new ShedError("INVALID_SHED_NAME", `invalid shed name ${quote(name)}`, {
      hint: "a name starts with a lowercase letter, contains only lowercase letters, digits and '-', and does not end with '-'",
    });
  }
  return name;
}
