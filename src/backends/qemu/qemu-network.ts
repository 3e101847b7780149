import type { GuestNet } from "./qemu-argv.js";

/**
 * The guest's network, and why it is built this way.
 *
 * Requirement: the shed reaches the internet (Debian's and npm's registries) but not the host's
 * loopback services, like a Docker container. QEMU's user-mode network (slirp) maps its gateway
 * 10.0.2.2 to the host's 127.0.0.1, and QEMU 7.2 has no option to turn that off (`restrict=on`
 * cuts the guest off from the outside too; libslirp 4.7's disable_host_loopback is not exposed).
 *
 * Tried first: passt (Debian bookworm's, 2023-03) with --no-map-gw on `-netdev stream`. Outbound
 * is fine, but a forwarded port into the guest never completes: passt does not ACK the guest's
 * SYN-ACK until the host side sends data, and the agent speaks first (its hello), so every
 * connection to the agent hangs (reproduced with a stand-in guest and with the real VM).
 *
 * Chosen: slirp inside a network namespace of QEMU's own, connected to the outside by pasta
 * (passt's namespace mode, same package):
 * - QEMU runs under `unshare --user --map-root-user --net`: its loopback is an empty namespace's.
 *   slirp's 10.0.2.2 -> "127.0.0.1" now means that namespace's loopback, where only slirp's own
 *   forwards listen; the host's loopback is not there.
 * - pasta joins that namespace (by QEMU's pid) and gives it the host's outside connectivity:
 *   --no-map-gw (the namespace's gateway is not the host's loopback either), `-T none -U none`
 *   (no forwarding from the namespace's loopback to the host's, which pasta does by default),
 *   `-u none`, and `-t 127.0.0.1/P:P` for each agent port: the host's 127.0.0.1:P only, spliced
 *   to the namespace's loopback, where slirp's hostfwd carries it into the guest.
 * - No root, no TAP device, no iptables on the host. A user namespace is needed (unprivileged
 *   user namespaces must be enabled when shed-server does not run as root).
 *
 * DNS: the guest asks slirp at 10.0.2.3; slirp asks the nameserver of /etc/resolv.conf as it sees
 * it. In QEMU's namespace a resolver on the host's loopback (systemd-resolved's 127.0.0.53) would
 * be unreachable, so QEMU also gets a mount namespace in which /etc/resolv.conf names
 * NAMESERVER_IN_NS, an address pasta answers with --dns-forward by asking the host's own first
 * resolver (from the host's namespace, so a loopback one works too). Only port 53 goes there.
 */
export const NAMESERVER_IN_NS = "169.254.1.53";

export const GUEST_NET: GuestNet = {
  address: "10.0.2.15",
  gateway: "10.0.2.2",
  netmask: "255.255.255.0",
  dns: "10.0.2.3",
};

export interface PortForward {
  /** Port on the host's 127.0.0.1 (and, the same number, on the namespace's loopback). */
  hostPort: number;
  guestPort: number;
}

/** QEMU's -netdev value: slirp with the agent forwards, bound to the namespace's loopback. */
export function buildSlirpNetdev(forwards: readonly PortForward[]): string {
  const parts = ["user", "id=net0", "net=10.0.2.0/24", `host=${GUEST_NET.gateway}`, `dns=${GUEST_NET.dns}`, "ipv6=off"];
  for (const f of forwards) parts.push(`hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`);
  return parts.join(",");
}

/**
 * The command QEMU runs under: new user, network and mount namespaces (QEMU is root only inside
 * them, mapped to the server's own user), /etc/resolv.conf replaced there by `resolvConf` (see
 * NAMESERVER_IN_NS), then QEMU exec'd in place, so the spawned pid is QEMU's. The script is fixed;
 * the file and QEMU's argv are its positional parameters.
 */
export function netnsWrapper(resolvConf: string): string[] {
  return [
    "unshare",
    "--user",
    "--map-root-user",
    "--net",
    "--mount",
    "--",
    "sh",
    "-c",
    'mount --bind "$1" /etc/resolv.conf || exit 97; shift; exec "$@"',
    "shed-qemu-netns",
    resolvConf,
  ];
}

export function resolvConfText(): string {
  return `nameserver ${NAMESERVER_IN_NS}\n`;
}

export interface PastaArgvOptions {
  /** QEMU's pid: pasta joins its user and network namespace. */
  targetPid: number;
  forwards: readonly PortForward[];
  logFile: string;
  /**
   * The user pasta runs as. As root it would drop to `nobody`, which may not enter a namespace
   * owned by root; the server's own user owns QEMU's namespace. pasta still confines itself
   * (namespaces, no capabilities, seccomp).
   */
  uid: number;
}

export function buildPastaArgv(o: PastaArgvOptions): string[] {
  const argv = [
    "pasta",
    "--foreground",
    "--quiet",
    "--runas",
    String(o.uid),
    "--log-file",
    o.logFile,
    "--ipv4-only",
    "--config-net",
    "--no-map-gw",
    "--dns-forward",
    NAMESERVER_IN_NS,
    // Nothing from the namespace's loopback to the host's (pasta's default is every bound port).
    "--tcp-ns",
    "none",
    "--udp-ns",
    "none",
    "--udp-ports",
    "none",
  ];
  if (o.forwards.length === 0) argv.push("--tcp-ports", "none");
  // 127.0.0.1/ binds the host side to loopback only: other hosts never see the agent port.
  for (const f of o.forwards) argv.push("--tcp-ports", `127.0.0.1/${f.hostPort}:${f.hostPort}`);
  argv.push(String(o.targetPid));
  return argv;
}
