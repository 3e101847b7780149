import type { Shed } from "../../core/types.js";

export function describeShed(shed: Shed): string {
  const lines = [
    `shed ${shed.name}: ${shed.status} (${shed.backend}, image ${shed.image})`,
    shed.repo ? `  repo: ${shed.repo}` : "",
    shed.local_dir ? `  local dir: ${shed.local_dir}` : "",
    ...shed.warnings.map((w) => `  warning: ${w}`),
  ];
  return lines.filter((l) => l !== "").join("\n");
}
