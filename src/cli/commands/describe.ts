import type { Shed } from "../../core/types.js";
import { safeLine } from "../safe-text.js";

export function describeShed(shed: Shed): string {
  const lines = [
    // Fields from the server, one line each: a line break in one must not forge another line.
    `shed ${safeLine(shed.name)}: ${safeLine(shed.status)} (${safeLine(shed.backend)}, image ${safeLine(shed.image)})`,
    shed.owner === "unowned"
      ? `  owner: unowned (this server will not start, stop, delete or exec in it)\n  hint: ${safeLine(shed.owner_hint)}`
      : "",
    shed.interrupted
      ? `  interrupted: ${safeLine(shed.interrupted.message)}\n  hint: ${safeLine(shed.interrupted.hint)}`
      : "",
    shed.repo ? `  repo: ${safeLine(shed.repo)}` : "",
    shed.local_dir ? `  local dir: ${safeLine(shed.local_dir)}` : "",
    ...shed.warnings.map((w) => `  warning: ${safeLine(w)}`),
  ];
  return lines.filter((l) => l !== "").join("\n");
}
