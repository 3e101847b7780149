import { dockerEngine } from "../../backends/docker/engine.js";
import { kvmStateOf } from "../../backends/firecracker/firecracker-check.js";
import { planHostNetwork } from "../../backends/firecracker/host-network.js";
import { hostProblem } from "../../backends/host-checks.js";
import { hostArch, resolveVmImage } from "../../backends/vm/vm-image.js";
import type { ServerConfig } from "../../config/server-config.js";
import type { DoctorCheck } from "../../core/doctor-report.js";
import { toShedError } from "../../core/errors.js";

/**
 * What each enabled backend needs. The verdict per backend is host-checks.ts's (what `create
 * --backend X` refuses with), so the doctor and the server never disagree; the engine, images,
 * /dev/kvm and NAT are looked at here in more detail.
 */

/** The oldest Engine API the Docker backend is verified on (Docker 20.10, Debian 12's docker.io). */
export const MIN_DOCKER_API = "1.41";

export function apiAtLeast(version: string, min: string): boolean {
  const [a = 0, b = 0] = version.split(".").map(Number);
  const [c = 0, d = 0] = min.split(".").map(Number);
  return a > c || (a === c && b >= d);
}

export async function dockerChecks(config: ServerConfig): Promise<DoctorCheck[]> {
  const docker = dockerEngine(config.dockerSocket);
  const socket = config.dockerSocket ?? process.env.DOCKER_HOST ?? "/var/run/docker.sock";
  let version: { Version?: string; ApiVersion?: string };
  try {
    version = await docker.version();
  } catch (err) {
    return [
      {
        check: "docker engine",
        status: "fail",
        detail: `cannot reach the Docker engine at ${socket}: ${toShedError(err).message}`,
        hint: "start it (systemctl start docker, or dockerd), and check docker_host or DOCKER_HOST and that this user may use the socket (group docker)",
      },
      { check: "default_image", status: "fail", detail: `${config.defaultImage}: not checked, no engine` },
    ];
  }
  const api = version.ApiVersion ?? "0";
  const engine: DoctorCheck = apiAtLeast(api, MIN_DOCKER_API)
    ? { check: "docker engine", status: "ok", detail: `Docker ${version.Version} (API ${api}) at ${socket}` }
    : {
        check: "docker engine",
        status: "fail",
        detail: `Docker ${version.Version} speaks API ${api}; shed needs ${MIN_DOCKER_API} (Docker 20.10) or newer`,
        hint: "upgrade the Docker engine",
      };
  return [engine, await imageCheck(docker, config)];
}

async function imageCheck(docker: ReturnType<typeof dockerEngine>, config: ServerConfig): Promise<DoctorCheck> {
  const check = "default_image";
  try {
    const info = await docker.getImage(config.defaultImage).inspect();
    return { check, status: "ok", detail: `${config.defaultImage} is in the engine (${info.Id.slice(0, 19)})` };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) {
      return { check, status: "fail", detail: `cannot inspect ${config.defaultImage}: ${toShedError(err).message}` };
    }
    return {
      check,
      status: "fail",
      detail: `${config.defaultImage} is not in the Docker engine`,
      hint: `build it (npm run build-image), pull it (docker pull ${config.defaultImage}), or set default_image ${config.file ? `in ${config.file}` : "in the server config"}`,
    };
  }
}

/** The VM image the VM backends boot by default (vm_image under vm_images_dir). */
export function vmImageCheck(config: ServerConfig, backend: "qemu" | "firecracker" | "vz"): DoctorCheck {
  const check = `vm_image (${backend})`;
  const arch = backend === "vz" ? "arm64" : hostArch();
  try {
    const image = resolveVmImage(config.vm.imagesDir, arch, config.vm.image);
    return { check, status: "ok", detail: `${config.vm.image} is built: ${image.dir}` };
  } catch (err) {
    const e = toShedError(err);
    return { check, status: "fail", detail: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
}

/** host-checks.ts's verdict for one backend. */
export function backendCheck(config: ServerConfig, backend: "qemu" | "firecracker" | "vz"): DoctorCheck {
  const check = `backend ${backend}`;
  const problem = hostProblem(backend, config);
  if (!problem) return { check, status: "ok", detail: "what it needs is on this host" };
  return { check, status: "fail", detail: problem.message, ...(problem.hint ? { hint: problem.hint } : {}) };
}

/** QEMU runs without KVM (TCG software emulation, slowly); Firecracker does not run at all. */
export function kvmCheck(needed: boolean): DoctorCheck {
  const state = kvmStateOf("/dev/kvm");
  if (state === "ok") return { check: "/dev/kvm", status: "ok", detail: "present, readable and writable" };
  const detail =
    state === "missing" ? "does not exist (no KVM on this host)" : "is not readable and writable by this user";
  return {
    check: "/dev/kvm",
    status: needed ? "fail" : "warn",
    detail: needed ? `${detail}: firecracker cannot run` : `${detail}: qemu runs under TCG software emulation (slow)`,
    hint:
      state === "missing"
        ? "use a KVM-capable host (bare metal, or a VM with nested virtualization) and `modprobe kvm_intel` or `modprobe kvm_amd`"
        : "add the server's user to the group that owns /dev/kvm (usually kvm)",
  };
}

/** Firecracker's bridge, IPv4 forwarding and NAT rules, as `shed-server setup` would find them (root only: iptables). */
export async function natCheck(config: ServerConfig): Promise<DoctorCheck> {
  const check = "bridge and NAT";
  if (process.geteuid?.() !== 0) {
    return {
      check,
      status: "warn",
      detail: "not checked: reading the iptables rules needs root",
      hint: "sudo shed-server setup --dry-run shows what is missing",
    };
  }
  try {
    const missing = await planHostNetwork({ bridge: config.vm.bridge, subnet: config.vm.subnet });
    if (missing.length === 0) {
      return {
        check,
        status: "ok",
        detail: `${config.vm.bridge} (${config.vm.subnet}), forwarding and NAT are set up`,
      };
    }
    return {
      check,
      status: "fail",
      detail: `missing: ${missing.map((a) => a.what).join("; ")}`,
      hint: "sudo shed-server setup (at every boot, before shed-server)",
    };
  } catch (err) {
    const e = toShedError(err);
    return { check, status: "fail", detail: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
}
