import { ShedError } from "../../core/errors.js";
import { findOnPath } from "../../core/find-on-path.js";

/**
 * Fail-fast checks for `--backend qemu`: say at once what is missing and how to get it, instead of
 * failing half-way through a create with a spawn error.
 */

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
