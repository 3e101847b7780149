import { ShedError } from "../../core/errors.js";
import { programMissing, resolveHostProgram } from "../vm/host-program.js";

/**
 * Fail-fast check for `--backend vz`: before anything is made, say what this host lacks and how to
 * get it, instead of failing half-way through a create with a spawn error. The injectable parts are
 * for unit tests; the defaults look at the real host.
 */
export interface VzHostProbe {
  /** vfkit_binary from the server config: a bare name is looked up on PATH, a path is used as is. */
  vfkitBinary: string;
  platform?: NodeJS.Platform;
  arch?: string;
  which?: (bin: string) => string | undefined;
}

export function checkVzHost(o: VzHostProbe): void {
  const platform = o.platform ?? process.platform;
  const arch = o.arch ?? process.arch;
  if (platform !== "darwin" || arch !== "arm64") {
    // Nothing else is worth checking: vfkit and the Virtualization framework exist only there.
    throw new ShedError(
      "BACKEND_NOT_ENABLED",
      `the vz backend needs macOS on Apple silicon; this is ${platform}/${arch}`,
      {
        hint: "run shed-server on a Mac with an M-series chip for --backend vz; here use --backend qemu, docker or (on Linux with KVM) firecracker",
        details: { platform, arch },
      },
    );
  }
  if (resolveHostProgram(o.vfkitBinary, o.which) === undefined) {
    throw new ShedError("BACKEND_NOT_ENABLED", `the vz backend needs vfkit, and ${programMissing(o.vfkitBinary)}`, {
      hint: "install it with `brew install vfkit`, or set vfkit_binary in the server config to where it is",
      details: { missing: ["vfkit"], vfkit_binary: o.vfkitBinary },
    });
  }
}
