import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

/** Expands a leading ~ and resolves relative paths against `base` (the config file's folder). */
export function resolveUserPath(p: string, base: string, home = homedir()): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return join(home, p.slice(2));
  return isAbsolute(p) ? p : resolve(base, p);
}
