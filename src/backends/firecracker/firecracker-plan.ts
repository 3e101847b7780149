import { isAbsolute } from "node:path";
import { ShedError } from "../../core/errors.js";
import { quote } from "../../core/quote.js";
import { buildVmKernelCmdline, type GuestNet } from "../vm/kernel-cmdline.js";

/**
 * What Shed asks of Firecracker, as data: the process's argv and the ordered REST requests that
 * configure and start the microVM on its API socket. Pure (no I/O), so `shed-server vm-plan` can
 * print it on any machine and tests can check every request against Firecracker's own OpenAPI
 * description (test/fixtures/firecracker-api.yaml). firecracker-api.ts sends it.
 *
 * Nothing secret goes here: the plan is printed, and the argv is visible to every user of the
 * host. The agent secret travels on the config disk, whose path (not contents) is in the plan.
 */

export interface FirecrackerRequest {
  method: "PUT" | "PATCH";
  path: string;
  body: Record<string, unknown>;
}

export interface FirecrackerPlanInput {
  /** The uncompressed ELF kernel (the image's vmlinux). */
  kernel: string;
  initrd?: string;
  /** The whole kernel command line (firecrackerBootArgs). */
  bootArgs: string;
  /** The instance's own copy of the base rootfs. */
  rootfs: string;
  /** The 4096-byte config disk (vm/config-disk.ts). */
  configDisk: string;
  cpus: number;
  memoryMiB: number;
  /** The TAP device on the host bridge that backs the guest's eth0. */
  tap: string;
  mac: string;
  /** The host Unix socket Firecracker listens on for host-to-guest vsock (CONNECT <port>). */
  vsockUds: string;
  cid: number;
}

/** Drive ids. Firecracker attaches the root drive first, so the guest sees it as vda and the next as vdb. */
export const ROOT_DRIVE_ID = "rootfs";
export const CONFIG_DRIVE_ID = "config";
/** The config disk's device name in the guest (Firecracker drives carry no serial number to find it by). */
export const CONFIG_DISK_GUEST_DEVICE = "vdb";
export const GUEST_IFACE_ID = "eth0";

/**
 * Firecracker's limits: vcpu_count is 1..32 (its API description); a Linux interface name is at
 * most 15 bytes (IFNAMSIZ - 1); a Unix socket path at most 107 bytes (sun_path less its NUL);
 * CIDs 0-2 are reserved (hypervisor, local, host) and 0xffffffff is VMADDR_CID_ANY.
 */
export const MAX_VCPUS = 32;
const MAX_IFNAME = 15;
const MAX_SOCKET_PATH = 107;
const MIN_CID = 3;
const MAX_CID = 0xffff_fffe;

/**
 * Guest kernel arguments from Firecracker's documentation (docs/kernel-policy.md, "Kernel command
 * line parameters"; docs/api_requests/actions.md). Firecracker puts its own defaults on the line
 * only when boot_args is absent, so the ones Shed needs are given here:
 * - reboot=k: a guest reboot resets through the i8042 keyboard controller, which Firecracker
 *   turns into its own exit; with panic=-1 a panic ends the VM too, instead of hanging.
 * - pci=off: Firecracker (without --enable-pci) has no PCI bus; the kernel then skips probing for
 *   one. ACPI still initialises: it needs CONFIG_PCI built in (Debian's kernel has it), not a bus.
 *   Firecracker adds this same word itself when PCI is off.
 * - i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd: skip probing for a mouse, a multiplexer,
 *   PnP descriptions and keyboard LEDs, which only cost boot time; the AT keyboard itself stays,
 *   and SendCtrlAltDel needs it (busybox init's ctrlaltdel entry reboots, which ends Firecracker).
 * Not taken from Firecracker's defaults: nomodule (the image loads virtio modules) and
 * 8250.nr_uarts=0 (it would remove ttyS0, the console the server records).
 */
export const FIRECRACKER_GUEST_ARGS: readonly string[] = [
  "reboot=k",
  "pci=off",
  "i8042.noaux",
  "i8042.nomux",
  "i8042.nopnp",
  "i8042.dumbkbd",
];

/**
 * The kernel command line for a Firecracker guest: the shared one (ip=, console on the 8250 UART,
 * the agent on vsock), Firecracker's guest arguments, and where the config disk is
 * (shed.cfgdev=vdb: the boot script reads it when no disk has the serial shedcfg).
 */
export function firecrackerBootArgs(net: GuestNet, extra: readonly string[] = []): string {
  return buildVmKernelCmdline({
    net,
    agent: "vsock",
    console: "ttyS0",
    extra: [...FIRECRACKER_GUEST_ARGS, `shed.cfgdev=${CONFIG_DISK_GUEST_DEVICE}`, ...extra],
  });
}

/**
 * The requests that configure and boot one microVM, in the order they are sent: machine, boot
 * source, drives (root first), network, vsock, then InstanceStart. Each body has only fields of
 * Firecracker's API description: Firecracker refuses unknown fields.
 */
export function buildFirecrackerPlan(o: FirecrackerPlanInput): FirecrackerRequest[] {
  checkPlanInput(o);
  const bootSource: Record<string, unknown> = { kernel_image_path: o.kernel, boot_args: o.bootArgs };
  if (o.initrd !== undefined) bootSource.initrd_path = o.initrd;
  return [
    { method: "PUT", path: "/machine-config", body: { vcpu_count: o.cpus, mem_size_mib: o.memoryMiB, smt: false } },
    { method: "PUT", path: "/boot-source", body: bootSource },
    {
      method: "PUT",
      path: `/drives/${ROOT_DRIVE_ID}`,
      body: {
        drive_id: ROOT_DRIVE_ID,
        path_on_host: o.rootfs,
        is_root_device: true,
        is_read_only: false,
        // Writeback advertises flush to the guest and honours it with an fsync, so what the guest
        // syncs survives a host crash (the default, Unsafe, ignores flushes): the rootfs is the
        // shed's workspace and lives across stops.
        cache_type: "Writeback",
      },
    },
    {
      method: "PUT",
      path: `/drives/${CONFIG_DRIVE_ID}`,
      // The guest only reads it (the secret and the hostname), as under QEMU.
      body: { drive_id: CONFIG_DRIVE_ID, path_on_host: o.configDisk, is_root_device: false, is_read_only: true },
    },
    {
      method: "PUT",
      path: `/network-interfaces/${GUEST_IFACE_ID}`,
      body: { iface_id: GUEST_IFACE_ID, host_dev_name: o.tap, guest_mac: o.mac },
    },
    { method: "PUT", path: "/vsock", body: { guest_cid: o.cid, uds_path: o.vsockUds } },
    { method: "PUT", path: "/actions", body: { action_type: "InstanceStart" } },
  ];
}

/**
 * An orderly shutdown from the host: on x86_64 Firecracker presses Ctrl+Alt+Del on the guest's
 * keyboard; the guest's init reboots (Firecracker has no ACPI power-off), and with reboot=k
 * Firecracker exits.
 */
export const SEND_CTRL_ALT_DEL: FirecrackerRequest = Object.freeze({
  method: "PUT",
  path: "/actions",
  body: Object.freeze({ action_type: "SendCtrlAltDel" }),
}) as FirecrackerRequest;

/** Firecracker's rule for --id (its instance id validation): letters, digits and '-', 1 to 64 of them. */
const INSTANCE_ID_RE = /^[A-Za-z0-9-]{1,64}$/;

/**
 * A Firecracker --id for a shed: `shed-<name>`. A shed name (lowercase letters, digits, '-', at
 * most 63) always fits once the prefix is dropped; anything else is mapped onto the allowed
 * characters. The id only labels Firecracker's log lines (Shed runs no jailer, which would use it
 * as a directory), so a rare collision would cost nothing.
 */
export function firecrackerInstanceId(name: string): string {
  const prefixed = `shed-${name}`;
  if (INSTANCE_ID_RE.test(prefixed)) return prefixed;
  const mapped = name.replace(/[^A-Za-z0-9-]/g, "-").slice(0, 64);
  return mapped === "" ? "shed" : mapped;
}

/** `firecracker --api-sock PATH --id ID`. An id Firecracker would refuse at start is refused here. */
export function firecrackerArgv(o: { binary: string; apiSock: string; id: string }): string[] {
  if (!INSTANCE_ID_RE.test(o.id)) {
    throw new ShedError("INTERNAL", `Firecracker instance id ${quote(o.id)} is not allowed`, {
      hint: "Firecracker accepts 1 to 64 letters, digits and '-' as --id; use firecrackerInstanceId(name)",
    });
  }
  // A bare name is looked up on PATH when spawned (firecracker_binary's default); a path must be absolute.
  if (o.binary.includes("/") || o.binary === "") checkPath("binary", o.binary);
  checkSocketPath("apiSock", o.apiSock);
  return [o.binary, "--api-sock", o.apiSock, "--id", o.id];
}

function checkPlanInput(o: FirecrackerPlanInput): void {
  checkPath("kernel", o.kernel);
  if (o.initrd !== undefined) checkPath("initrd", o.initrd);
  checkPath("rootfs", o.rootfs);
  checkPath("configDisk", o.configDisk);
  checkSocketPath("vsockUds", o.vsockUds);
  if (typeof o.bootArgs !== "string" || o.bootArgs.trim() === "") invalid("bootArgs", o.bootArgs, "is empty");
  if (!Number.isInteger(o.cpus) || o.cpus < 1 || o.cpus > MAX_VCPUS) {
    invalid("cpus", o.cpus, `must be a whole number from 1 to ${MAX_VCPUS} (Firecracker's limit)`);
  }
  if (!Number.isInteger(o.memoryMiB) || o.memoryMiB < 1)
    invalid("memoryMiB", o.memoryMiB, "must be a whole number of MiB");
  if (!/^[A-Za-z0-9_.-]+$/.test(o.tap) || Buffer.byteLength(o.tap) > MAX_IFNAME) {
    invalid("tap", o.tap, `must be an interface name of 1 to ${MAX_IFNAME} letters, digits, '_', '.' or '-'`);
  }
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(o.mac)) invalid("mac", o.mac, "must look like 06:00:0a:00:00:02");
  if (!Number.isInteger(o.cid) || o.cid < MIN_CID || o.cid > MAX_CID) {
    invalid("cid", o.cid, `must be a whole number from ${MIN_CID} to ${MAX_CID} (0-2 are reserved)`);
  }
}

// Firecracker resolves a relative path against its own working directory, which is not the server's.
function checkPath(field: string, value: string): void {
  if (typeof value !== "string" || !isAbsolute(value)) invalid(field, value, "must be an absolute path");
  if (value.includes("\0")) invalid(field, value, "contains a NUL byte");
}

function checkSocketPath(field: string, value: string): void {
  checkPath(field, value);
  if (Buffer.byteLength(value) > MAX_SOCKET_PATH) {
    invalid(field, value, `is ${Buffer.byteLength(value)} bytes; a Unix socket path holds at most ${MAX_SOCKET_PATH}`);
  }
}

function invalid(field: string, value: unknown, why: string): never {
  throw new ShedError("INTERNAL", `Firecracker plan: ${field} ${quote(String(value))} ${why}`, {
    hint:
      field === "vsockUds" || field === "apiSock"
        ? "use a shorter data_dir: the instance's sockets live under it"
        : "this value came from the backend, not the user: report it",
  });
}
