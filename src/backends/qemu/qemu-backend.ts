import { ShedError } from "../../core/errors.js";
import type { GuestExec } from "../../guest/exec.js";
import type { CreateSpec, Ownership } from "../backend.js";
import { CAPABILITIES } from "../capabilities.js";
import type { InstanceLocalDir } from "../vm/instance-meta.js";
import { VmBackend, type VmBackendOptions } from "../vm/vm-backend.js";
import { hostArch, resolveVmImage } from "../vm/vm-image.js";
import type { StopOutcome, VmDriver, VmMachine } from "../vm/vm-machine.js";
import { checkQemuInstalled } from "./qemu-check.js";
import { mountWorkspace } from "./qemu-local-dir.js";
import { QemuMachine } from "./qemu-machine.js";
import { checkVirtiofsAvailable } from "./qemu-virtiofs.js";

/**
 * The QEMU column: the VM path that runs on any Linux (KVM when there is /dev/kvm, software
 * emulation otherwise). A shed is a qcow2 overlay over the image's root filesystem and, while it
 * runs, a detached QEMU plus its network helper (qemu-machine.ts); the agent is reached on a
 * loopback port guarded by the VM's secret.
 */
export function qemuDriver(opts: VmBackendOptions): VmDriver {
  return {
    name: "qemu",
    capabilities: CAPABILITIES.qemu,
    checkHost: () => checkQemuInstalled(),
    checkCreate: (spec: CreateSpec) => {
      if (spec.localDir) checkVirtiofsAvailable();
    },
    image: (name: string) => resolveVmImage(opts.vm.imagesDir, hostArch(), name),
    create: (o) => QemuMachine.create(o),
    open: (dataDir, name) => QemuMachine.open(dataDir, name),
    storageMessage: (image) => `disk overlay over ${image.dir}`,
    stopMessage: (how: StopOutcome, timeoutMs: number) =>
      how === "powerdown"
        ? "powered down by the ACPI power button (QMP system_powerdown)"
        : how === "killed"
          ? `killed: the guest had not powered down within stop_timeout (${timeoutMs / 1000}s)`
          : "it was not running",
    mountLocalDir: async (guest: GuestExec, machine: VmMachine, dir: InstanceLocalDir) => {
      if (!(machine instanceof QemuMachine)) throw new ShedError("INTERNAL", "a QEMU shed without a QEMU machine");
      await mountWorkspace(guest, dir, machine.fsHelper());
      return `virtiofs share of ${dir.path}`;
    },
  };
}

export class QemuBackend extends VmBackend {
  constructor(ownership: Ownership, opts: VmBackendOptions) {
    super(ownership, opts, qemuDriver(opts));
  }
}
