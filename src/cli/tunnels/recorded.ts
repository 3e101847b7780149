import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Where the tunnel state lives, and a look at it that loads nothing else: the
 * quick path (quick.ts) asks it whether `shed stop|delete NAME` must go to the
 * full CLI, which stops the shed's tunnels first.
 */
export const tunnelsDir = (cfgDir: string): string => join(cfgDir, "tunnels");
export const tunnelStateFile = (cfgDir: string): string => join(tunnelsDir(cfgDir), "state.json");

/** Whether the state file records a tunnel to a shed of this name (any server; an unreadable file counts as yes). */
export function tunnelsRecordedFor(cfgDir: string, shed: string): boolean {
  let text: string;
  try {
    text = readFileSync(tunnelStateFile(cfgDir), "utf8");
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ENOENT";
  }
  try {
    const state = JSON.parse(text) as { tunnels?: { shed?: unknown }[] };
    return !Array.isArray(state.tunnels) || state.tunnels.some((t) => t.shed === shed);
  } catch {
    return true;
  }
}
