import { ShedError } from "../../core/errors.js";
import { quote } from "../../core/quote.js";

/**
 * The guest kernel's command line, shared by every VM backend (QEMU, Firecracker, VZ): the image's
 * init reads it (the contract with /etc/shed/boot). `ip=` is applied by that init itself, because
 * Debian's kernels have no IP_PNP (docs/vm-kernel.md).
 */

/** The guest's side of its network: its address, its gateway, and the resolver it should use. */
export interface GuestNet {
  address: string;
  gateway: string;
  netmask: string;
  dns: string;
}

export interface VmKernelCmdlineOptions {
  net: GuestNet;
  /** How the agent listens; undefined starts no agent listener at all. */
  agent?: "tcp" | "vsock";
  /** The console device: ttyS0 (a 8250 UART: QEMU, Firecracker) or hvc0 (virtio-console: VZ). */
  console: string;
  /** Backend-specific words, placed before shed.agent= (each one word, e.g. "reboot=k"). */
  extra?: readonly string[];
}

/**
 * The kernel's own limit (COMMAND_LINE_SIZE, 2048 on x86_64 and arm64): a longer line is cut
 * silently, which would lose the last words (shed.agent= among them).
 */
export const MAX_KERNEL_CMDLINE = 2048;

/**
 * `root=/dev/vda rw console=<c> ip=<addr>::<gw>:<mask>::eth0:off:<dns> panic=-1 [extra...] shed.agent=<a>`.
 * panic=-1 turns a panic into an immediate reboot, which each backend makes an exit of the
 * hypervisor (QEMU's -no-reboot, Firecracker's reboot=k), so the server sees a stop instead of a
 * VM that hangs forever.
 */
export function buildVmKernelCmdline(o: VmKernelCmdlineOptions): string {
  // The line is split on whitespace by the kernel and by the boot script, and ip= on ':'; a value
  // carrying either would shift every later field without any error at boot.
  const { address, gateway, netmask, dns } = o.net;
  for (const [field, value] of [
    ["net.address", address],
    ["net.gateway", gateway],
    ["net.netmask", netmask],
    ["net.dns", dns],
  ] as const) {
    checkWord(field, value, { noColon: true });
  }
  checkWord("console", o.console);
  const extra = o.extra ?? [];
  extra.forEach((word, i) => {
    checkWord(`extra[${i}]`, word);
  });
  const parts = [
    "root=/dev/vda",
    "rw",
    `console=${o.console}`,
    `ip=${address}::${gateway}:${netmask}::eth0:off:${dns}`,
    "panic=-1",
    ...extra,
  ];
  if (o.agent) parts.push(`shed.agent=${o.agent}`);
  const line = parts.join(" ");
  if (Buffer.byteLength(line) > MAX_KERNEL_CMDLINE) {
    throw new ShedError(
      "INTERNAL",
      `the kernel command line is ${Buffer.byteLength(line)} bytes; the kernel keeps only ${MAX_KERNEL_CMDLINE}`,
      { hint: "remove some of the extra kernel arguments" },
    );
  }
  return line;
}

function checkWord(field: string, value: string, opts: { noColon?: boolean } = {}): void {
  let why: string | undefined;
  if (typeof value !== "string" || value === "") why = "is empty";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused here
  else if (/[\s\u0000-\u001f\u007f]/.test(value)) why = "contains a space or a control character";
  else if (opts.noColon && value.includes(":")) why = "contains ':', which separates the fields of ip=";
  if (why) {
    throw new ShedError("INTERNAL", `kernel command line field ${field} ${why}: ${quote(String(value))}`, {
      hint: "each kernel argument must be a single word; this value came from the backend, not the user: report it",
    });
  }
}
