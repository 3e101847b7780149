import type { GuestNet } from "./qemu-argv.js";

/**
 * The guest's network: passt (Debian bookworm's, 2023-03) connected to QEMU 7.2 through
 * `-netdev stream` on a Unix socket in the instance directory.
 *
 * Why passt and not QEMU's built-in user network (slirp): slirp maps its gateway 10.0.2.2 to the
 * host's 127.0.0.1, so every service the host keeps on loopback (shed-server's own API, databases,
 * the Docker socket proxy...) would be open to code in the shed, and QEMU 7.2's `-netdev user`
 * has no option to turn that mapping off (`restrict=on` cuts the guest off from everything).
 * passt does the same socket-level translation without root, and `--no-map-gw` turns the
 * gateway-to-loopback mapping off: the guest reaches the outside like any host process would, and
 * the host's loopback not at all, like a Docker container. passt also does the agent port
 * forwards, bound to 127.0.0.1 only. A TAP device behind NAT would need root and iptables on the
 * host for every shed.
 *
 * The addresses are slirp's familiar ones, fixed (each guest has its own private link to its own
 * passt, so all guests may share them): the guest gets them from the kernel command line.
 * DNS goes to 10.0.2.3, which passt forwards to the host's first resolver (which may itself be on
 * loopback, e.g. systemd-resolved; only port 53 is forwarded there).
 */
export const GUEST_NET: GuestNet = {
  address: "10.0.2.15",
  gateway: "10.0.2.2",
  netmask: "255.255.255.0",
  dns: "10.0.2.3",
};

export interface PasstArgvOptions {
  socket: string;
  logFile: string;
  /** Host loopback port -> guest port. */
  forwards: ReadonlyArray<{ hostPort: number; guestPort: number }>;
  /**
   * The user passt runs as. Run as root, passt drops to `nobody` before binding its socket, and
   * nobody cannot enter the 0700 instance directory; so it runs as the server's own user (the
   * same user QEMU runs as). passt still confines itself (its own namespaces, no capabilities,
   * seccomp).
   */
  uid: number;
}

export function buildPasstArgv(o: PasstArgvOptions): string[] {
  const argv = [
    "passt",
    "--foreground",
    // One client only, and exit when it disconnects: passt never outlives its QEMU.
    "--one-off",
    "--runas",
    String(o.uid),
    "--socket",
    o.socket,
    "--log-file",
    o.logFile,
    "--quiet",
    "--no-map-gw",
    "--ipv4-only",
    "--address",
    GUEST_NET.address,
    "--netmask",
    GUEST_NET.netmask,
    "--gateway",
    GUEST_NET.gateway,
    "--dns-forward",
    GUEST_NET.dns,
    "--dns",
    GUEST_NET.dns,
    "--no-dhcp-search",
  ];
  // 127.0.0.1/ binds the forward to loopback only: other hosts never see the agent port.
  for (const f of o.forwards) argv.push("--tcp-ports", `127.0.0.1/${f.hostPort}:${f.guestPort}`);
  return argv;
}
