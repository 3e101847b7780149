import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { type FirecrackerHost, FirecrackerMachine } from "../backends/firecracker/firecracker-machine.js";
import { allocateNetwork, releasePendingNetwork } from "../backends/firecracker/net-alloc.js";
import { instanceDir } from "../backends/vm/instance-dir.js";
import type { InstanceMeta } from "../backends/vm/instance-meta.js";
import { hostArch, resolveVmImage, type VmArch } from "../backends/vm/vm-image.js";
import { checkVfkitPath, VZ_LIMITS } from "../backends/vz/vfkit-argv.js";
import { VzMachine } from "../backends/vz/vz-machine.js";
import type { ServerConfig } from "../config/server-config.js";
import { ShedError } from "../core/errors.js";
import { validateShedName } from "../core/names.js";
import { tryParseSize } from "../core/size.js";

export interface VmPlanOptions {
  backend: string;
  name: string;
  cpus?: string;
  memory?: string;
  image?: string;
  localDir?: string;
}

/** What `shed-server vm-plan` prints: exactly what a boot of that shed would run and send. */
export interface VmPlan {
  backend: "firecracker" | "vz";
  name: string;
  instance_dir: string;
  /** The hypervisor's argv, as spawned (no shell). */
  argv: string[];
  /** Firecracker only: its API requests, in order, as sent to the API socket. */
  requests?: { method: string; path: string; body: Record<string, unknown> }[];
  /** What this plan assumed because this host is not the one it would run on. */
  notes: string[];
}

/**
 * The launch of a Firecracker or VZ shed, printed without starting anything (the issue's
 * `vm-plan`): the same code that a boot runs (FirecrackerMachine.launch, VzMachine.launch), fed a
 * metadata record made as create would make it. Works on any machine: a missing image or
 * hypervisor is noted, not refused, so a plan can be read where the hypervisor does not run.
 */
export function buildVmPlan(config: ServerConfig, o: VmPlanOptions): VmPlan {
  if (o.backend !== "firecracker" && o.backend !== "vz") {
    throw new ShedError("INVALID_REQUEST", `--backend ${JSON.stringify(o.backend)}: vm-plan knows firecracker and vz`, {
      hint: "shed-server vm-plan --backend firecracker NAME, or --backend vz NAME",
    });
  }
  const backend = o.backend;
  const name = validateShedName(o.name);
  const notes: string[] = [];
  const arch: VmArch = backend === "vz" ? "arm64" : hostArch();
  const imageName = o.image ?? config.vm.image;
  let imageDir: string;
  try {
    imageDir = resolveVmImage(config.vm.imagesDir, arch, imageName).dir;
  } catch {
    imageDir = resolve(config.vm.imagesDir, `${imageName}-${arch}`);
    notes.push(
      `the image ${imageDir} is not built on this host: its paths are where \`npm run build-vm-image\` puts it`,
    );
  }
  const dir = instanceDir(config.dataDir, name);
  const meta: InstanceMeta = {
    version: 1,
    name,
    backend,
    image: imageDir,
    arch,
    created_at: new Date().toISOString(),
    server_id: "vm-plan",
    agent_transport: "vsock",
    ports: {},
    hypervisor: null,
    helpers: {},
    memory_mib: memoryMiB(o.memory, config),
    cpus: cpus(o.cpus, config),
  };
  checkSize(backend, meta.cpus, meta.memory_mib);
  if (backend === "firecracker") {
    if (o.localDir !== undefined) {
      throw new ShedError("NOT_SUPPORTED", "the firecracker backend does not support --local-dir", {
        hint: "plan it without --local-dir",
      });
    }
    const host: FirecrackerHost = {
      binary: config.vm.firecrackerBinary,
      bridge: config.vm.bridge,
      subnet: config.vm.subnet,
    };
    // What create would allocate now: the lowest TAP, IP and CID no instance of this data_dir holds.
    const network = allocateNetwork(config.dataDir, host.subnet);
    releasePendingNetwork(network);
    notes.push(`${network.tap}, ${network.ip} and CID ${network.cid} are the next free ones in ${config.dataDir} now`);
    const launch = FirecrackerMachine.launch(dir, { ...meta, network }, host);
    return { backend, name, instance_dir: dir, argv: launch.argv, requests: launch.requests, notes };
  }
  const withDir: InstanceMeta = o.localDir === undefined ? meta : { ...meta, local_dir: localDir(o.localDir) };
  const launch = VzMachine.launch(dir, withDir, {
    vfkitBinary: config.vm.vfkitBinary,
    credentials: config.credentials,
  });
  return { backend, name, instance_dir: dir, argv: launch.argv, notes };
}

/** What each hypervisor takes (Firecracker's API description: vcpu_count 1..32; VZ: vfkit-argv.ts's VZ_LIMITS). */
const SIZE_LIMITS = {
  firecracker: { maxCpus: 32, minMemoryMiB: 128 },
  vz: { maxCpus: VZ_LIMITS.maxCpus, minMemoryMiB: VZ_LIMITS.minMemoryMiB, maxMemoryMiB: VZ_LIMITS.maxMemoryMiB },
} as const;

function checkSize(backend: "firecracker" | "vz", cpus: number, memoryMiB: number): void {
  const limits: { maxCpus: number; minMemoryMiB: number; maxMemoryMiB?: number } = SIZE_LIMITS[backend];
  if (cpus > limits.maxCpus) {
    throw new ShedError("INVALID_REQUEST", `--cpus ${cpus}: ${backend} takes at most ${limits.maxCpus}`);
  }
  if (memoryMiB < limits.minMemoryMiB || (limits.maxMemoryMiB !== undefined && memoryMiB > limits.maxMemoryMiB)) {
    const range = `${limits.minMemoryMiB} MiB${limits.maxMemoryMiB ? ` to ${limits.maxMemoryMiB} MiB` : " or more"}`;
    throw new ShedError("INVALID_REQUEST", `--memory ${memoryMiB} MiB: ${backend} takes ${range}`);
  }
}

function cpus(value: string | undefined, config: ServerConfig): number {
  if (value === undefined) return config.vm.cpus;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) {
    throw new ShedError("INVALID_REQUEST", `--cpus ${JSON.stringify(value)}: a whole number of CPUs, at least 1`);
  }
  return n;
}

function memoryMiB(value: string | undefined, config: ServerConfig): number {
  if (value === undefined) return Math.floor(config.vm.memoryBytes / 1024 ** 2);
  // A bare number is MiB, as `shed create --memory` will take it; a unit is taken as written.
  const bytes = /^\d+$/.test(value) ? Number(value) * 1024 ** 2 : tryParseSize(value);
  if (bytes === undefined || bytes < 1024 ** 2) {
    throw new ShedError("INVALID_REQUEST", `--memory ${JSON.stringify(value)}: MiB (e.g. 2048) or a size (e.g. 2GiB)`);
  }
  return Math.floor(bytes / 1024 ** 2);
}

function localDir(path: string) {
  let real: string;
  try {
    real = realpathSync(resolve(path));
  } catch {
    throw new ShedError("LOCAL_DIR_NOT_FOUND", `--local-dir ${resolve(path)} does not exist`, {
      hint: "give an existing directory",
    });
  }
  checkVfkitPath(real, "--local-dir");
  const st = statSync(real, { bigint: true });
  if (!st.isDirectory()) throw new ShedError("LOCAL_DIR_NOT_FOUND", `--local-dir ${real} is not a directory`);
  return { path: real, dev: String(st.dev), ino: String(st.ino) };
}
