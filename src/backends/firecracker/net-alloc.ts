import { readFileSync } from "node:fs";
import { ShedError } from "../../core/errors.js";
import { formatIpv4, parseIpv4, parseSubnetCidr, prefixMask } from "../../core/ipv4.js";
import { instanceDir, instancePath, listInstanceNames } from "../vm/instance-dir.js";
import { type InstanceNetwork, readInstanceMeta } from "../vm/instance-meta.js";

/**
 * A Firecracker instance's TAP device, guest IP, MAC and vsock CID. The same pattern as the
 * forwarded ports (vm/ports.ts): what is allocated is written into the instance's metadata
 * (`network`) and kept for the instance's life, so a restarted server rebuilds the used set by
 * reading every instance's metadata, and nothing recorded is handed out again, whether its
 * instance is running or stopped. Allocations this process handed out but has not yet written to
 * any metadata are held in `pending` until released.
 *
 * Each field is the lowest free one on its own (not derived from each other): a data_dir can hold
 * instances from an older vm_subnet whose addresses no longer line up with their TAP numbers.
 */
const pending: InstanceNetwork[] = [];

export const TAP_PREFIX = "shedtap";
/** vsock CIDs 0-2 are reserved (hypervisor, local, host). */
export const FIRST_CID = 3;

export interface SubnetPlan {
  bridgeIp: string;
  netmask: string;
  prefix: number;
  /** The guests' default gateway: the bridge's address. */
  gateway: string;
  firstGuest: string;
  lastGuest: string;
}

/** What a vm_subnet means: the bridge takes the first host address, guests the rest up to the broadcast. */
export function planSubnet(cidr: string): SubnetPlan {
  const r = parseSubnetCidr(cidr);
  if (!r.ok) {
    throw new ShedError("INVALID_CONFIG", `vm_subnet ${JSON.stringify(cidr)} is not usable: ${r.why}`, {
      hint: "set vm_subnet in the server config to an IPv4 network such as 172.30.0.0/24",
    });
  }
  const broadcast = (r.network | ~prefixMask(r.prefix)) >>> 0;
  const bridgeIp = formatIpv4(r.network + 1);
  return {
    bridgeIp,
    netmask: formatIpv4(prefixMask(r.prefix)),
    prefix: r.prefix,
    gateway: bridgeIp,
    firstGuest: formatIpv4(r.network + 2),
    lastGuest: formatIpv4(broadcast - 1),
  };
}

/** A locally administered unicast MAC (first octet 06) carrying the IPv4 address, so it is unique when the IP is. */
export function macForIp(ip: string): string {
  const n = parseIpv4(ip);
  if (n === undefined) throw new Error(`not an IPv4 address: ${ip}`);
  const octets = [0x06, 0x00, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return octets.map((o) => o.toString(16).padStart(2, "0")).join(":");
}

/** Every network recorded in any instance's metadata under data_dir. */
export function recordedNetworks(dataDir: string): InstanceNetwork[] {
  const out: InstanceNetwork[] = [];
  for (const name of listInstanceNames(dataDir)) {
    const dir = instanceDir(dataDir, name);
    let net: InstanceNetwork | undefined;
    try {
      net = readInstanceMeta(dir)?.network;
    } catch {
      // A damaged or newer-version file is reported where the instance is used. Its network is
      // still reserved when it can be read, so a repaired (or newer server's) instance keeps it.
      net = salvageNetwork(instancePath(dir, "meta"));
    }
    if (net) out.push(net);
  }
  return out;
}

function salvageNetwork(file: string): InstanceNetwork | undefined {
  try {
    const raw = (JSON.parse(readFileSync(file, "utf8")) as { network?: unknown } | null)?.network;
    if (typeof raw !== "object" || raw === null) return undefined;
    const { tap, ip, mac, cid } = raw as Record<string, unknown>;
    if (typeof tap !== "string" || typeof ip !== "string" || typeof mac !== "string") return undefined;
    if (typeof cid !== "number" || !Number.isInteger(cid)) return undefined;
    return { tap, ip, mac, cid };
  } catch {
    return undefined;
  }
}

/**
 * The lowest free TAP name, guest IP (with its MAC) and CID, none recorded by an instance or
 * pending in this process. Reserved here until `releasePendingNetwork`.
 */
export function allocateNetwork(dataDir: string, subnet: string): InstanceNetwork {
  const plan = planSubnet(subnet);
  const used = [...recordedNetworks(dataDir), ...pending];
  const taps = new Set(used.map((n) => n.tap));
  const ips = new Set(used.map((n) => n.ip));
  const cids = new Set(used.map((n) => n.cid));

  const first = parseIpv4(plan.firstGuest) as number;
  const last = parseIpv4(plan.lastGuest) as number;
  let ip: string | undefined;
  for (let n = first; n <= last && ip === undefined; n++) {
    if (!ips.has(formatIpv4(n))) ip = formatIpv4(n);
  }
  if (ip === undefined) {
    throw new ShedError(
      "BACKEND_ERROR",
      `no free guest address left in vm_subnet ${subnet}: all ${last - first + 1} (${plan.firstGuest} to ${plan.lastGuest}) belong to sheds`,
      {
        hint: "widen vm_subnet in the server config to a shorter prefix that contains it, then run `shed-server setup`; or delete sheds you no longer need",
        details: { subnet, guests: last - first + 1 },
      },
    );
  }
  let index = 0;
  while (taps.has(`${TAP_PREFIX}${index}`)) index++;
  let cid = FIRST_CID;
  while (cids.has(cid)) cid++;

  const net: InstanceNetwork = { tap: `${TAP_PREFIX}${index}`, ip, mac: macForIp(ip), cid };
  pending.push(net);
  return net;
}

/** Call once the network is in the instance's metadata, or the create failed. */
export function releasePendingNetwork(net: InstanceNetwork): void {
  const i = pending.findIndex((p) => p.tap === net.tap && p.ip === net.ip && p.cid === net.cid);
  if (i >= 0) pending.splice(i, 1);
}

/** What this process holds unwritten (tests: a fresh server starts with none). */
export function pendingNetworks(): readonly InstanceNetwork[] {
  return [...pending];
}
