import { ShedError } from "../../core/errors.js";
import type { CreateSpec, Ownership } from "../backend.js";
import { CAPABILITIES } from "../capabilities.js";
import { VmBackend, type VmBackendOptions } from "../vm/vm-backend.js";
import { hostArch, resolveVmImage, type VmImage } from "../vm/vm-image.js";
import type { StopOutcome, VmDriver } from "../vm/vm-machine.js";
import { checkFirecrackerHost } from "./firecracker-check.js";
import { type FirecrackerHost, FirecrackerMachine } from "./firecracker-machine.js";
import { MAX_VCPUS } from "./firecracker-plan.js";

export function firecrackerHost(opts: VmBackendOptions): FirecrackerHost {
  return { binary: opts.vm.firecrackerBinary, bridge: opts.vm.bridge, subnet: opts.vm.subnet };
}

/** The seed's Firecracker column on the shared VM path (vm-backend.ts); firecracker-machine.ts spawns and stops. */
export function firecrackerDriver(opts: VmBackendOptions): VmDriver {
  const host = firecrackerHost(opts);
  return {
    name: "firecracker",
    capabilities: CAPABILITIES.firecracker,
    sizeLimits: { maxCpus: MAX_VCPUS },
    checkHost: () => checkFirecrackerHost({ firecrackerBinary: host.binary, bridge: host.bridge }),
    checkCreate: (spec: CreateSpec) => {
      if (spec.localDir) {
        throw new ShedError("NOT_SUPPORTED", "the firecracker backend does not support --local-dir", {
          hint: "create it without --local-dir (the repository is cloned into the microVM), or use --backend docker",
        });
      }
    },
    image: (name: string) => firecrackerImage(opts, name),
    create: (o) => FirecrackerMachine.create(o, host),
    open: (dataDir, name) => FirecrackerMachine.open(dataDir, name, host),
    storageMessage: (image) => `copy of ${image.rootfs} (a reflink where the filesystem supports it)`,
    stopMessage: (how: StopOutcome, timeoutMs: number) =>
      how === "powerdown"
        ? "shut down by SendCtrlAltDel (the guest rebooted, which ends Firecracker)"
        : how === "killed"
          ? `killed: the guest had not shut down within stop_timeout (${timeoutMs / 1000}s)`
          : "it was not running",
  };
}

function firecrackerImage(opts: VmBackendOptions, name: string): VmImage {
  const image = resolveVmImage(opts.vm.imagesDir, hostArch(), name);
  if (!image.vmlinux) {
    throw new ShedError("IMAGE_NOT_FOUND", `the VM image ${image.dir} has no vmlinux, the kernel Firecracker boots`, {
      hint: "rebuild it with `npm run build-vm-image` (x86_64 builds extract vmlinux; arm64 is not built for Firecracker yet)",
    });
  }
  return image;
}

export class FirecrackerBackend extends VmBackend {
  constructor(ownership: Ownership, opts: VmBackendOptions) {
    super(ownership, opts, firecrackerDriver(opts));
  }
}
