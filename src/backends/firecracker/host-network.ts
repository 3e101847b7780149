import { readFileSync } from "node:fs";
import { ShedError } from "../../core/errors.js";
import { parseIpv4, prefixMask } from "../../core/ipv4.js";
import {
  describeLink,
  inNetns,
  linkInfo,
  mustRunNetCommand,
  type NetCommandOptions,
  runNetCommand,
} from "./ip-command.js";
import { planSubnet } from "./net-alloc.js";

/**
 * The host side of Firecracker networking, made by `shed-server setup` (as root, once per host
 * boot: none of it survives a reboot): a bridge the VMs' TAP devices join, holding the first
 * address of vm_subnet (the guests' gateway); IPv4 forwarding; and NAT for the subnet.
 *
 * Why iptables and not a table of our own in nftables: Docker is installed on these hosts and sets
 * the filter FORWARD chain's policy to DROP. In nftables every base chain on a hook gets its say and
 * a packet must be accepted by all of them, so an `accept` in a separate nft table cannot overrule
 * Docker's drop. The accept has to be in the same FORWARD chain, before that policy applies: so the
 * rules go in with the same `iptables` Docker uses (whichever backend it is), inserted at the top
 * of FORWARD (-I) so that Docker's or any other firewall's later rules do not come first.
 * Docker re-inserts only its own jump (DOCKER-USER, which returns by default) above them when it
 * restarts, which does not change the outcome for the bridge's traffic.
 *
 * Each rule carries a comment naming the bridge, so `iptables -S` shows whose it is.
 */

export interface SetupAction {
  /** What it does, for a human. */
  what: string;
  /** The exact command (run inside the namespace when one is given). */
  argv: string[];
}

export interface HostNetworkOptions extends NetCommandOptions {
  bridge: string;
  subnet: string;
}

const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";

interface IptablesRule {
  table: "nat" | "filter";
  chain: string;
  /** -A appends (NAT: order does not matter there), -I inserts at the top (ahead of a DROP). */
  add: "-A" | "-I";
  spec: string[];
  what: string;
}

function rules(bridge: string, subnet: string): IptablesRule[] {
  const mark = ["-m", "comment", "--comment", `shed vm_bridge ${bridge}`];
  return [
    {
      table: "nat",
      chain: "POSTROUTING",
      add: "-A",
      spec: ["-s", subnet, "!", "-o", bridge, ...mark, "-j", "MASQUERADE"],
      what: `NAT (masquerade) traffic from ${subnet} leaving through any interface but ${bridge}`,
    },
    {
      table: "filter",
      chain: "FORWARD",
      add: "-I",
      spec: ["-i", bridge, ...mark, "-j", "ACCEPT"],
      what: `accept forwarding of traffic coming from ${bridge}`,
    },
    {
      // Only replies go back in: nothing outside can open a connection to a guest.
      table: "filter",
      chain: "FORWARD",
      add: "-I",
      spec: ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", ...mark, "-j", "ACCEPT"],
      what: `accept forwarding of replies going to ${bridge}`,
    },
  ];
}

/** `-w`: wait for the xtables lock instead of failing while Docker holds it. */
function iptables(table: string, op: string, chain: string, spec: readonly string[]): string[] {
  return ["iptables", "-w", "-t", table, op, chain, ...spec];
}

async function ipForwardOn(opts: NetCommandOptions): Promise<boolean> {
  // /proc/sys/net is per network namespace: read from inside it when one is given.
  const text =
    opts.netns === undefined
      ? readFileSync(IP_FORWARD, "utf8")
      : await mustRunNetCommand(["cat", IP_FORWARD], { ...opts, what: "read net.ipv4.ip_forward" });
  return text.trim() === "1";
}

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
}

async function bridgeAddresses(bridge: string, opts: NetCommandOptions): Promise<AddrInfo[]> {
  const out = await mustRunNetCommand(["ip", "-j", "-4", "addr", "show", "dev", bridge], {
    ...opts,
    what: `read the addresses of ${bridge}`,
  });
  const links = JSON.parse(out) as { addr_info?: AddrInfo[] }[];
  return (links[0]?.addr_info ?? []).filter((a) => a.family === "inet");
}

/**
 * A vm_subnet that overlaps a network the host already routes elsewhere (a LAN, a Docker network)
 * would make guests and those hosts unreachable from each other: refuse it before changing anything.
 */
async function checkNoOverlap(o: HostNetworkOptions): Promise<void> {
  const out = await mustRunNetCommand(["ip", "-j", "-4", "route", "show", "table", "main"], {
    ...o,
    what: "read the routing table",
  });
  const [net, len] = o.subnet.split("/") as [string, string];
  const start = parseIpv4(net) as number;
  const end = start + 2 ** (32 - Number(len)) - 1;
  for (const route of JSON.parse(out) as { dst: string; dev?: string }[]) {
    if (route.dst === "default" || route.dev === o.bridge) continue;
    const [rnet, rlen = "32"] = route.dst.split("/");
    const rstart = parseIpv4(rnet ?? "");
    if (rstart === undefined) continue;
    const rend = ((rstart & prefixMask(Number(rlen))) >>> 0) + 2 ** (32 - Number(rlen)) - 1;
    if (rstart <= end && start <= rend) {
      throw new ShedError(
        "INVALID_CONFIG",
        `vm_subnet ${o.subnet} overlaps ${route.dst}, which this host routes through ${route.dev ?? "another interface"}`,
        { hint: "set vm_subnet in the server config to a private network nothing on this host uses" },
      );
    }
  }
}

/** Looks at the current state and returns only what is missing, in the order to apply it. */
export async function planHostNetwork(o: HostNetworkOptions): Promise<SetupAction[]> {
  const plan = planSubnet(o.subnet);
  const opts: NetCommandOptions = o.netns === undefined ? {} : { netns: o.netns };
  const actions: SetupAction[] = [];
  const address = `${plan.bridgeIp}/${plan.prefix}`;

  await checkNoOverlap(o);
  const link = await linkInfo(o.bridge, opts);
  if (link && link.linkinfo?.info_kind !== "bridge") {
    throw new ShedError("INVALID_CONFIG", `vm_bridge ${o.bridge} is ${describeLink(link)}, not a bridge`, {
      hint: "set vm_bridge in the server config to a name no other interface uses",
    });
  }
  if (!link) {
    actions.push({
      what: `create the bridge ${o.bridge}`,
      argv: ["ip", "link", "add", "name", o.bridge, "type", "bridge"],
    });
  }
  const addrs = link ? await bridgeAddresses(o.bridge, opts) : [];
  if (!addrs.some((a) => a.local === plan.bridgeIp && a.prefixlen === plan.prefix)) {
    // The bridge IP under another prefix is what an earlier, narrower or wider vm_subnet left.
    for (const a of addrs.filter((x) => x.local === plan.bridgeIp)) {
      actions.push({
        what: `remove the address ${a.local}/${a.prefixlen} from ${o.bridge} (vm_subnet is now ${o.subnet})`,
        argv: ["ip", "addr", "del", `${a.local}/${a.prefixlen}`, "dev", o.bridge],
      });
    }
    actions.push({
      what: `give the bridge ${o.bridge} the address ${address}`,
      argv: ["ip", "addr", "add", address, "dev", o.bridge],
    });
  }
  if (!link?.flags.includes("UP")) {
    actions.push({ what: `bring the bridge ${o.bridge} up`, argv: ["ip", "link", "set", "dev", o.bridge, "up"] });
  }
  if (!(await ipForwardOn(opts))) {
    actions.push({
      what: "turn on IPv4 forwarding (net.ipv4.ip_forward=1)",
      argv: ["sysctl", "-w", "net.ipv4.ip_forward=1"],
    });
  }
  for (const rule of rules(o.bridge, o.subnet)) {
    const check = await runNetCommand(iptables(rule.table, "-C", rule.chain, rule.spec), opts);
    // -C exits 1 when the rule is not there; anything else (no iptables, no permission) is a failure.
    if (check.code === 1) {
      actions.push({ what: rule.what, argv: iptables(rule.table, rule.add, rule.chain, rule.spec) });
    } else if (check.code !== 0) {
      throw new ShedError(
        "BACKEND_ERROR",
        `could not check the iptables rules: \`${inNetns(iptables(rule.table, "-C", rule.chain, rule.spec), o.netns).join(" ")}\` exited ${check.code}: ${check.stderr.trim()}`,
        { hint: "shed-server setup needs iptables (iptables-nft or legacy, the one Docker uses) and root" },
      );
    }
  }
  return actions;
}

/** Runs the actions in order; stops at the first that fails. */
export async function applyHostNetwork(
  actions: readonly SetupAction[],
  o: NetCommandOptions & { log: (line: string) => void },
): Promise<void> {
  const opts: NetCommandOptions = o.netns === undefined ? {} : { netns: o.netns };
  for (const action of actions) {
    await mustRunNetCommand(action.argv, { ...opts, what: action.what });
    o.log(`done: ${action.what}`);
  }
}

/** The one-line description of a finished setup. */
export function describeHostNetwork(o: { bridge: string; subnet: string }): string {
  const plan = planSubnet(o.subnet);
  return `bridge ${o.bridge} ${plan.bridgeIp}/${plan.prefix}, forwarding on, NAT for ${o.subnet}`;
}
