import { execFile } from "node:child_process";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { ShedError } from "../../core/errors.js";
import { instancePath } from "./instance-dir.js";
import { type InstanceMeta, updateInstanceMeta } from "./instance-meta.js";

const execFileAsync = promisify(execFile);

/**
 * Sheds made before VM images were kept as immutable builds name the image by its old path,
 * `<images>/shed-vm-<arch>`: in the metadata, and as the qcow2 overlay's backing file (qcow2 keeps
 * the path as given, and QEMU opens it anew at every boot). scripts/build-vm-image.sh moved that
 * directory to `builds/<name>` and put a symlink to the current build at the old path, which a
 * later rebuild moves: such a shed would then boot another build's kernel over another build's
 * disk. `<old path>.legacy` records the build the old path meant; before a boot this re-points the
 * overlay's backing file (`qemu-img rebase -u`: the header only, the blocks are the same) and the
 * metadata at that build. Sheds made since name the build itself (resolveVmImage).
 *
 * Returns the metadata to boot with (unchanged when there is nothing to do).
 */
export async function pinLegacyImage(dir: string, meta: InstanceMeta): Promise<InstanceMeta> {
  const record = `${meta.image}.legacy`;
  if (!lstatSync(meta.image, { throwIfNoEntry: false })?.isSymbolicLink() || !existsSync(record)) return meta;
  const build = resolve(dirname(meta.image), readFileSync(record, "utf8").trim());
  const rootfs = join(build, "rootfs.ext4");
  if (!existsSync(rootfs)) {
    throw new ShedError("IMAGE_NOT_FOUND", `the VM image build ${build} this shed's disk was made from is gone`, {
      hint: "it was removed although this shed used it (build-vm-image --prune without this shed's data_dir); the disk cannot boot without it",
      details: { image_dir: build },
    });
  }
  const overlay = instancePath(dir, "overlay");
  const { stdout } = await execFileAsync("qemu-img", ["info", "--output=json", overlay], { timeout: 60_000 });
  const backing = (JSON.parse(stdout) as { "backing-filename"?: string })["backing-filename"];
  if (backing === join(meta.image, "rootfs.ext4")) {
    await execFileAsync("qemu-img", ["rebase", "-u", "-f", "qcow2", "-F", "raw", "-b", rootfs, overlay], {
      timeout: 60_000,
    }).catch((err: { stderr?: string; message: string }) => {
      throw new ShedError(
        "BACKEND_ERROR",
        `could not re-point the disk of ${meta.name} at the image build ${build}: ${(err.stderr || err.message).trim()}`,
        { hint: `check that ${overlay} is writable and no other process has it open` },
      );
    });
  }
  return updateInstanceMeta(dir, (m) => ({ ...m, image: build }));
}
