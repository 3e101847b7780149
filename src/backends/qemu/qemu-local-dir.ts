import { ShedError } from "../../core/errors.js";
import { WORKSPACE } from "../../core/types.js";
import { type GuestExec, runCollect } from "../../guest/exec.js";
import { workspaceIdentity } from "../../guest/workspace-identity.js";
import type { InstanceLocalDir, ProcessRecord } from "../vm/instance-meta.js";
import { servedRoot, VIRTIOFS_TAG } from "./qemu-virtiofs.js";

const HINT =
  "the VM image's kernel needs the virtiofs module (rebuild it with `npm run build-vm-image`); the instance's virtiofsd.log and serial.log say more";

/**
 * Create step 3 and start step 2 on QEMU: mounts the virtiofs share at /workspace in the guest (a
 * mount does not outlive the VM's reboot, so every start does it again), then proves it shows the
 * directory the server checked. Any failure is fatal: a shed whose /workspace is not the user's
 * directory would quietly work in the VM's own disk.
 *
 * What can be compared, and where:
 * - On the host, the root of virtiofsd's sandbox (it pivot_roots into the directory) has the
 *   checked directory's device and inode: virtiofsd serves that directory, not one a swapped path
 *   component led it to between the check and its start.
 * - In the guest, /workspace's inode number is the checked directory's: virtiofsd passes the host's
 *   st_ino through. The device number is the guest's own for the FUSE mount and cannot match, which
 *   is why the host-side check above carries the device.
 */
export async function mountWorkspace(
  guest: GuestExec,
  dir: InstanceLocalDir,
  fs: ProcessRecord | undefined,
): Promise<void> {
  if (!fs) {
    throw new ShedError("BACKEND_ERROR", `the VM has no virtiofsd for ${dir.path}`, { hint: HINT });
  }
  if (!(await isMounted(guest))) {
    // A fixed argv, as root (only root mounts); the tag is the one qemu-argv.ts gave the device.
    const r = await runCollect(guest, { argv: ["mount", "-t", "virtiofs", VIRTIOFS_TAG, WORKSPACE], user: "root" });
    if (r.exitCode !== 0) {
      throw new ShedError(
        "BACKEND_ERROR",
        `could not mount ${dir.path} at ${WORKSPACE} in the VM: ${r.stderr.trim() || `mount exited ${r.exitCode}`}`,
        { hint: HINT },
      );
    }
  }
  const served = servedRoot(fs);
  const seen = await workspaceIdentity(guest);
  if (served.dev !== dir.dev || served.ino !== dir.ino || seen.ino !== dir.ino) {
    throw new ShedError(
      "LOCAL_DIR_REFUSED",
      `the directory shared at ${WORKSPACE} is not ${dir.path} as checked: a part of its path changed between the check and the mount`,
      { hint: "make sure nobody else can rename or replace the directories along that path, and try again" },
    );
  }
}

/** True when /workspace is already the virtiofs mount (a start that re-attached to a running VM). */
async function isMounted(guest: GuestExec): Promise<boolean> {
  const r = await runCollect(guest, { argv: ["cat", "/proc/self/mounts"], user: "root" });
  if (r.exitCode !== 0) return false;
  return r.stdout.split("\n").some((line) => {
    const [source, target, type] = line.split(" ");
    return source === VIRTIOFS_TAG && target === WORKSPACE && type === "virtiofs";
  });
}
