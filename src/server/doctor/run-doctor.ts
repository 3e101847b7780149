import type { ServerConfig } from "../../config/server-config.js";
import { type DoctorCheck, type DoctorReport, report } from "../../core/doctor-report.js";
import { backendCheck, dockerChecks, kvmCheck, natCheck, vmImageCheck } from "./backend-checks.js";
import { dataDirCheck, diskCheck, portCheck } from "./host-checks.js";

/**
 * `shed-server doctor`: whether this host can run the server and each backend its config enables.
 * It reads and listens for a moment, and changes nothing; a server already running on the same
 * data_dir is recognised (its ports are its own), so it can be run beside the server.
 */
export async function runServerDoctor(config: ServerConfig): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [
    { check: "config", status: "ok", detail: config.file ?? "none: defaults apply" },
    dataDirCheck(config),
    diskCheck(config),
    await portCheck(config, "http_port", config.httpPort),
    await portCheck(config, "ssh_port", config.sshPort),
  ];
  const enabled = config.enabledBackends;
  if (enabled.includes("docker")) checks.push(...(await dockerChecks(config)));
  if (enabled.includes("qemu") || enabled.includes("firecracker"))
    checks.push(kvmCheck(enabled.includes("firecracker")));
  for (const backend of enabled) {
    if (backend === "docker") continue;
    checks.push(backendCheck(config, backend), vmImageCheck(config, backend));
    if (backend === "firecracker") checks.push(await natCheck(config));
  }
  return report(checks);
}
