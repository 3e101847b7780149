import { ShedError } from "../../core/errors.js";
import { type GuestExec, runCollect } from "../../guest/exec.js";

/** The root device as every VM image boots it (root=/dev/vda; image/vm/rootfs/etc/fstab). */
const ROOT_DEVICE = "/dev/vda";

/**
 * Grows the guest's root ext4 filesystem to fill its disk, online (ext4 grows while mounted).
 * The disk was made larger than the image at create (`--disk`, vm_disk), so the guest's own
 * resize2fs does it: nothing on the host has to understand qcow2 or mount anything. Run at every
 * boot of a sized VM: a filesystem already as large as its disk is "nothing to do", and a grow a
 * crash cut short is finished the next time.
 */
export async function growRootFilesystem(guest: GuestExec, vm: string): Promise<void> {
  const r = await runCollect(guest, { argv: ["resize2fs", ROOT_DEVICE], user: "root" });
  if (r.exitCode !== 0) {
    throw new ShedError(
      "BACKEND_ERROR",
      `VM ${vm}: resize2fs ${ROOT_DEVICE} could not grow the root filesystem to the disk's size (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().slice(-500)}`,
      {
        hint: "the image needs resize2fs (e2fsprogs) and an ext4 root on /dev/vda, as `npm run build-vm-image` makes it",
      },
    );
  }
}
