import { accessSync, constants, existsSync } from "node:fs";
import { join } from "node:path";
import { ShedError } from "../../core/errors.js";
import { programMissing, resolveHostProgram } from "../vm/host-program.js";

/**
 * Fail-fast check for `--backend firecracker`: before anything is made, say everything this host
 * lacks (KVM, the firecracker binary, the bridge) and how to get each, instead of failing half-way
 * through a create. The injectable parts are for unit tests; the defaults look at the real host.
 */
export interface FirecrackerHostProbe {
  /** firecracker_binary from the server config: a bare name is looked up on PATH, a path is used as is. */
  firecrackerBinary: string;
  kvmPath?: string;
  which?: (bin: string) => string | undefined;
  /** vm_bridge from the server config. */
  bridge: string;
  bridgeExists?: (name: string) => boolean;
  /** Whether this process may open the KVM device read/write; default: the real device's access(2). */
  kvmState?: (path: string) => KvmState;
}

export type KvmState = "ok" | "missing" | "no-access";

export function kvmStateOf(path: string): KvmState {
  if (!existsSync(path)) return "missing";
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return "ok";
  } catch {
    return "no-access";
  }
}

/** A Linux bridge shows up as /sys/class/net/NAME/bridge (a plain interface has no such directory). */
export function linuxBridgeExists(name: string): boolean {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || name === "." || name === "..") return false;
  return existsSync(join("/sys/class/net", name, "bridge"));
}

interface Missing {
  what: string;
  problem: string;
  hint: string;
}

export function checkFirecrackerHost(o: FirecrackerHostProbe): void {
  const kvmPath = o.kvmPath ?? "/dev/kvm";
  const missing: Missing[] = [];
  const kvm = (o.kvmState ?? kvmStateOf)(kvmPath);
  if (kvm === "missing") {
    missing.push({
      what: kvmPath,
      problem: `${kvmPath} does not exist (no KVM on this host)`,
      hint: "use a KVM-capable Linux host (bare metal, or a VM with nested virtualization) and load the module: `modprobe kvm_intel` or `modprobe kvm_amd`",
    });
  } else if (kvm === "no-access") {
    missing.push({
      what: kvmPath,
      problem: `${kvmPath} is not readable and writable by this user`,
      hint: `add the server's user to the group that owns ${kvmPath} (usually kvm: \`sudo usermod -aG kvm USER\`, then log in again)`,
    });
  }
  if (resolveHostProgram(o.firecrackerBinary, o.which) === undefined) {
    missing.push({
      what: "firecracker",
      problem: `the firecracker binary: ${programMissing(o.firecrackerBinary)}`,
      hint: "download a release from https://github.com/firecracker-microvm/firecracker/releases and put `firecracker` on PATH, or set firecracker_binary in the server config",
    });
  }
  if (!(o.bridgeExists ?? linuxBridgeExists)(o.bridge)) {
    missing.push({
      what: o.bridge,
      problem: `the bridge ${o.bridge} does not exist`,
      hint: "create it (with its NAT and IP forwarding) with `sudo shed-server setup`",
    });
  }
  if (missing.length === 0) return;
  throw new ShedError(
    "BACKEND_NOT_ENABLED",
    `the firecracker backend cannot run on this host: ${missing.map((m) => m.problem).join("; ")}`,
    {
      hint: missing.map((m) => m.hint).join("; "),
      details: { missing: missing.map((m) => m.what) },
    },
  );
}
