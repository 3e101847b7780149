import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { VmArch } from "../../backends/vm/vm-image.js";
import { ShedError } from "../../core/errors.js";
import type { LifecycleSink } from "../../core/events.js";

/** The VM part of a build is apt, npm and mkfs: minutes, but not without end. */
const VM_BUILD_TIMEOUT_MS = 30 * 60_000;

/**
 * scripts/build-vm-image.sh, found beside the running program: dist/shed-server.mjs and
 * src/server/images/*.ts both live inside the checkout that has it (with image/vm and dist/agent,
 * which the script uses).
 */
export function buildVmImageScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const script = join(dir, "scripts", "build-vm-image.sh");
    if (existsSync(script)) return script;
    const up = dirname(dir);
    if (up === dir) {
      throw new ShedError("INTERNAL", "scripts/build-vm-image.sh is not beside this shed-server", {
        hint: "run shed-server from its checkout (bin/shed-server), where scripts/ and image/vm are",
      });
    }
    dir = up;
  }
}

export interface VmBuildSpec {
  name: string;
  /** The Docker image to make the VM image from (its id). */
  base: string;
  imagesDir: string;
  arch: VmArch;
  force: boolean;
  step: string;
  emit: LifecycleSink;
}

/**
 * The VM form of a named image, made the way `npm run build-vm-image` makes the default one (the
 * same script: the VM layer with kernel, init and boot service over the Docker image, the agent,
 * mkfs.ext4), into vm_images_dir as NAME-<arch>. The script is a no-op when nothing that goes into
 * it changed. Its output is the step's output.
 */
export async function buildVmImage(spec: VmBuildSpec): Promise<void> {
  const argv = [buildVmImageScript(), "--arch", spec.arch, "--name", spec.name, "--base", spec.base, "--stream"];
  if (spec.force) argv.push("--force");
  const child = spawn("bash", argv, {
    env: { ...process.env, SHED_VM_IMAGES: spec.imagesDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let tail = "";
  const forward = (stream: "stdout" | "stderr") => (bytes: Buffer) => {
    tail = (tail + bytes.toString("utf8")).slice(-2000);
    spec.emit({ type: "output_bytes", step: spec.step, stream, bytes });
  };
  child.stdout.on("data", forward("stdout"));
  child.stderr.on("data", forward("stderr"));
  const timer = setTimeout(() => child.kill("SIGTERM"), VM_BUILD_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) {
    const last = tail.trim().split("\n").slice(-1)[0] ?? "";
    throw new ShedError(
      "BACKEND_ERROR",
      `the VM image ${spec.name}-${spec.arch} could not be made (build-vm-image.sh exited ${code ?? "on a signal"}): ${last}`,
      {
        hint: "the output above says which part failed; `npm run build-vm-image` on the server checks the same tools",
      },
    );
  }
}
