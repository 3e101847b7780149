/**
 * IPv4 addresses as 32-bit unsigned numbers, and the one kind of CIDR Shed accepts for its VM
 * bridge (`vm_subnet`). Shared by the server config (to report a bad value with its file and line)
 * and the Firecracker network code (to plan and allocate addresses), so both agree on what is valid.
 */

const OCTET = /^(0|[1-9]\d{0,2})$/;

/** "a.b.c.d" as a number, or undefined (leading zeros are refused: some tools read them as octal). */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The netmask of a prefix length as a number (prefix 0 is 0). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffff_ffff << (32 - prefix)) >>> 0;
}

/**
 * The bridge subnet's bounds: at least /16 wide is plenty and keeps the allocation scan small;
 * at most /29, so there is a network, a broadcast, the bridge's address and at least five guests.
 */
export const MIN_SUBNET_PREFIX = 16;
export const MAX_SUBNET_PREFIX = 29;

export type CidrResult = { ok: true; network: number; prefix: number } | { ok: false; why: string };

/** Parses a VM subnet "a.b.c.d/p": an IPv4 network address (host bits zero) with p in 16..29. */
export function parseSubnetCidr(text: string): CidrResult {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return { ok: false, why: "not an IPv4 CIDR; write the network and prefix, e.g. 172.30.0.0/24" };
  const addr = parseIpv4(m[1] as string);
  if (addr === undefined) return { ok: false, why: `${m[1]} is not an IPv4 address` };
  const prefix = Number(m[2]);
  if (prefix < MIN_SUBNET_PREFIX || prefix > MAX_SUBNET_PREFIX) {
    return { ok: false, why: `prefix /${prefix} is out of range: use /${MIN_SUBNET_PREFIX} to /${MAX_SUBNET_PREFIX}` };
  }
  const network = (addr & prefixMask(prefix)) >>> 0;
  if (network !== addr) {
    return {
      ok: false,
      why: `${m[1]} has host bits set for /${prefix}; the network is ${formatIpv4(network)}/${prefix}`,
    };
  }
  return { ok: true, network, prefix };
}
