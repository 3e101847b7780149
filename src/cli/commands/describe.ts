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
    sizeLine(shed),
    ...shed.warnings.map((w) => `  warning: ${safeLine(w)}`),
    ...forwardPortLines(shed),
  ];
  return lines.filter((l) => l !== "").join("\n");
}

/** "  size: 2 CPUs, 1024 MiB, disk 20 GiB" with what the shed records; nothing for a shed without limits. */
function sizeLine(shed: Shed): string {
  const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  const parts = [
    num(shed.cpus) ? `${shed.cpus} CPU${shed.cpus === 1 ? "" : "s"}` : "",
    num(shed.memory_mib) ? `${shed.memory_mib} MiB` : "",
    num(shed.disk_gib) ? `disk ${shed.disk_gib} GiB` : "",
  ].filter((p) => p !== "");
  return parts.length ? `  size: ${parts.join(", ")}` : "";
}

/**
 * devcontainer.json's forwardPorts, which Shed does not forward by itself: the
 * ssh command that forwards each (the Host comes from `shed ssh-config --install`).
 */
function forwardPortLines(shed: Shed): string[] {
  const ports = shed.provision?.forward_ports ?? [];
  return ports.map((p) => {
    const [host, port] = p.includes(":")
      ? [p.slice(0, p.lastIndexOf(":")), p.slice(p.lastIndexOf(":") + 1)]
      : ["localhost", p];
    return `  forwardPorts ${safeLine(p)}: ssh -N -L ${safeLine(port)}:${safeLine(host)}:${safeLine(port)} shed-${safeLine(shed.name)}`;
  });
}
