// Time budget: 60 s. Everything happens inside network namespaces this file creates and always
// removes: the host's own namespace is only looked at (to show it was left alone), never changed.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyHostNetwork, planHostNetwork } from "../../src/backends/firecracker/host-network.js";
import { linkInfo } from "../../src/backends/firecracker/ip-command.js";
import { allocateNetwork, planSubnet, releasePendingNetwork } from "../../src/backends/firecracker/net-alloc.js";
import { deleteTap, ensureTap } from "../../src/backends/firecracker/tap.js";
import { ShedError } from "../../src/core/errors.js";
import { runSetupCommand } from "../../src/server/setup-command.js";
import { tempDir } from "../helpers/cli.js";

const execFileAsync = promisify(execFile);

const RUN = randomBytes(3).toString("hex");
/** The "host" the setup runs on, a guest behind the bridge, and the outside world beyond NAT. */
const HOST = `shedtest-${RUN}-host`;
const GUEST = `shedtest-${RUN}-guest`;
const OUTSIDE = `shedtest-${RUN}-out`;
const ALL = [HOST, GUEST, OUTSIDE];
const BRIDGE = "shedbr0";
const SUBNET = "172.30.0.0/24";
const UPLINK_HOST_IP = "198.51.100.1";
const OUTSIDE_IP = "198.51.100.2";

async function run(argv: string[]): Promise<string> {
  const [program, ...args] = argv as [string, ...string[]];
  const { stdout } = await execFileAsync(program, args, { timeout: 20_000 });
  return stdout;
}

const inNs = (ns: string, argv: string[]): Promise<string> => run(["ip", "netns", "exec", ns, ...argv]);

const created: string[] = [];
let hostLinksBefore: string[] = [];

async function hostLinkNames(): Promise<string[]> {
  return (JSON.parse(await run(["ip", "-j", "link", "show"])) as { ifname: string }[]).map((l) => l.ifname).sort();
}

/** Everything setup can change in a namespace, to compare before and after. */
async function snapshot(ns: string): Promise<string> {
  const links = await inNs(ns, ["ip", "-j", "addr", "show"]);
  const forward = await inNs(ns, ["cat", "/proc/sys/net/ipv4/ip_forward"]);
  const filter = await inNs(ns, ["iptables", "-w", "-S"]);
  const nat = await inNs(ns, ["iptables", "-w", "-t", "nat", "-S"]);
  return JSON.stringify({ links, forward, filter, nat });
}

async function setup(dryRun: boolean): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runSetupCommand({
    bridge: BRIDGE,
    subnet: SUBNET,
    dryRun,
    netns: HOST,
    out: (l) => lines.push(l),
  });
  return { code, lines };
}

async function errorOf(p: Promise<unknown>): Promise<ShedError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error("expected an error");
}

beforeAll(async () => {
  hostLinksBefore = await hostLinkNames();
  // No skip: a machine where `ip netns` does not work fails this file.
  for (const ns of ALL) {
    await run(["ip", "netns", "add", ns]);
    created.push(ns);
    await inNs(ns, ["ip", "link", "set", "lo", "up"]);
  }
  // Like a host with Docker: forwarding dropped unless a rule accepts it.
  await inNs(HOST, ["iptables", "-w", "-P", "FORWARD", "DROP"]);
  // A new namespace copies ip_forward from the host's (1 wherever Docker runs): start from a host without it.
  await inNs(HOST, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]);
});

afterAll(async () => {
  const failures: string[] = [];
  for (const ns of created.splice(0)) {
    try {
      await run(["ip", "netns", "del", ns]);
    } catch (err) {
      failures.push(`${ns}: ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) throw new Error(`could not remove test namespaces: ${failures.join("; ")}`);
});

describe.sequential("shed-server setup inside a network namespace", () => {
  it("plans bridge, address, forwarding and NAT; --dry-run changes nothing; applying makes them; a second run has nothing to do", async () => {
    const plan = await planHostNetwork({ bridge: BRIDGE, subnet: SUBNET, netns: HOST });
    expect(plan.map((a) => a.what)).toEqual([
      "create the bridge shedbr0",
      "give the bridge shedbr0 the address 172.30.0.1/24",
      "bring the bridge shedbr0 up",
      "turn on IPv4 forwarding (net.ipv4.ip_forward=1)",
      "NAT (masquerade) traffic from 172.30.0.0/24 leaving through any interface but shedbr0",
      "accept forwarding of traffic coming from shedbr0",
      "accept forwarding of replies going to shedbr0",
    ]);

    const before = await snapshot(HOST);
    const dry = await setup(true);
    expect(dry.code).toBe(0);
    expect(dry.lines[0]).toBe("will change:");
    expect(dry.lines).toContain("  - create the bridge shedbr0");
    expect(dry.lines).toContain(`      ip netns exec ${HOST} ip addr add 172.30.0.1/24 dev shedbr0`);
    expect(dry.lines.at(-1)).toBe("dry run: nothing was changed");
    expect(await snapshot(HOST)).toBe(before);

    const real = await setup(false);
    expect(real.code).toBe(0);
    expect(real.lines).toContain("done: create the bridge shedbr0");
    expect(real.lines).toContain("set up: bridge shedbr0 172.30.0.1/24, forwarding on, NAT for 172.30.0.0/24");

    const [addr] = JSON.parse(await inNs(HOST, ["ip", "-j", "addr", "show", "dev", BRIDGE])) as {
      flags: string[];
      addr_info: { family: string; local: string; prefixlen: number }[];
    }[];
    expect(addr?.flags).toContain("UP");
    expect(addr?.addr_info.filter((a) => a.family === "inet")).toMatchObject([{ local: "172.30.0.1", prefixlen: 24 }]);
    expect((await inNs(HOST, ["cat", "/proc/sys/net/ipv4/ip_forward"])).trim()).toBe("1");
    const nat = await inNs(HOST, ["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"]);
    expect(nat).toContain(
      '-A POSTROUTING -s 172.30.0.0/24 ! -o shedbr0 -m comment --comment "shed vm_bridge shedbr0" -j MASQUERADE',
    );
    const forward = (await inNs(HOST, ["iptables", "-w", "-S", "FORWARD"])).trim().split("\n");
    // Ahead of everything else in FORWARD, whose policy is DROP here as under Docker.
    expect(forward).toEqual([
      "-P FORWARD DROP",
      '-A FORWARD -o shedbr0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "shed vm_bridge shedbr0" -j ACCEPT',
      '-A FORWARD -i shedbr0 -m comment --comment "shed vm_bridge shedbr0" -j ACCEPT',
    ]);

    const after = await snapshot(HOST);
    const again = await setup(false);
    expect(again).toEqual({
      code: 0,
      lines: ["nothing to change: bridge shedbr0 172.30.0.1/24, forwarding on, NAT for 172.30.0.0/24"],
    });
    expect((await setup(true)).lines).toEqual(again.lines);
    expect(await snapshot(HOST)).toBe(after);
  });

  it("puts back only what went missing", async () => {
    await inNs(HOST, ["ip", "link", "set", "dev", BRIDGE, "down"]);
    await inNs(HOST, ["iptables", "-w", "-t", "nat", "-F", "POSTROUTING"]);
    const plan = await planHostNetwork({ bridge: BRIDGE, subnet: SUBNET, netns: HOST });
    expect(plan.map((a) => a.what)).toEqual([
      "bring the bridge shedbr0 up",
      "NAT (masquerade) traffic from 172.30.0.0/24 leaving through any interface but shedbr0",
    ]);
    await applyHostNetwork(plan, { netns: HOST, log: () => {} });
    expect(await planHostNetwork({ bridge: BRIDGE, subnet: SUBNET, netns: HOST })).toEqual([]);
  });

  it("refuses to run as a user other than root, and a subnet the host already routes elsewhere", async () => {
    const e = await errorOf(
      runSetupCommand({ bridge: BRIDGE, subnet: SUBNET, dryRun: true, netns: HOST, out: () => {}, euid: 1000 }),
    );
    expect(e.message).toContain("must run as root");
    expect(e.hint).toContain("sudo shed-server setup --dry-run");

    // A LAN on 172.30.0.0/16 (a veth pair: this kernel has no dummy interfaces).
    await inNs(OUTSIDE, ["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await inNs(OUTSIDE, ["ip", "addr", "add", "172.30.0.77/16", "dev", "lan0"]);
    await inNs(OUTSIDE, ["ip", "link", "set", "lan1", "up"]);
    await inNs(OUTSIDE, ["ip", "link", "set", "lan0", "up"]);
    const overlap = await errorOf(planHostNetwork({ bridge: BRIDGE, subnet: SUBNET, netns: OUTSIDE }));
    expect(overlap.message).toBe("vm_subnet 172.30.0.0/24 overlaps 172.30.0.0/16, which this host routes through lan0");
    await inNs(OUTSIDE, ["ip", "link", "del", "lan0"]);
  });

  it("a guest behind the bridge reaches the outside through NAT; the outside sees the host's address", async () => {
    expect((await setup(false)).lines[0]).toMatch(/^nothing to change/);
    const net = allocateNetwork(tempDir("host-net"), SUBNET);
    releasePendingNetwork(net);
    const plan = planSubnet(SUBNET);

    // The guest's end is a veth on the bridge, standing in for a TAP.
    await inNs(HOST, ["ip", "link", "add", "gst0", "type", "veth", "peer", "name", "eth0", "netns", GUEST]);
    await inNs(HOST, ["ip", "link", "set", "dev", "gst0", "master", BRIDGE, "up"]);
    await inNs(GUEST, ["ip", "link", "set", "dev", "eth0", "address", net.mac]);
    await inNs(GUEST, ["ip", "addr", "add", `${net.ip}/${plan.prefix}`, "dev", "eth0"]);
    await inNs(GUEST, ["ip", "link", "set", "dev", "eth0", "up"]);
    await inNs(GUEST, ["ip", "route", "add", "default", "via", plan.gateway]);

    // The outside knows nothing of 172.30.0.0/24: a reply can only come back through the NAT.
    await inNs(HOST, ["ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", OUTSIDE]);
    await inNs(HOST, ["ip", "addr", "add", `${UPLINK_HOST_IP}/24`, "dev", "up0"]);
    await inNs(HOST, ["ip", "link", "set", "dev", "up0", "up"]);
    await inNs(OUTSIDE, ["ip", "addr", "add", `${OUTSIDE_IP}/24`, "dev", "eth0"]);
    await inNs(OUTSIDE, ["ip", "link", "set", "dev", "eth0", "up"]);

    const server = spawn(
      "ip",
      [
        "netns",
        "exec",
        OUTSIDE,
        process.execPath,
        "-e",
        `const s = require("node:net").createServer((c) => { c.end(c.remoteAddress + "\\n"); });
         s.listen(7777, process.argv[1], () => console.log("listening"));`,
        OUTSIDE_IP,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        server.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("listening")) resolve();
        });
        server.once("exit", (code) => reject(new Error(`the outside's server exited (${code}): ${out}`)));
      });
      const seen = await inNs(GUEST, [
        process.execPath,
        "-e",
        `const c = require("node:net").connect(7777, process.argv[1]);
         let got = ""; c.on("data", (d) => { got += d; }); c.on("end", () => process.stdout.write(got));
         c.on("error", (e) => { console.error(e.message); process.exit(1); });`,
        OUTSIDE_IP,
      ]);
      expect(seen.trim()).toBe(UPLINK_HOST_IP);
    } finally {
      server.kill("SIGKILL");
    }
  });

  it("ensureTap makes a TAP on the bridge, idempotently; deleteTap removes it; a missing bridge names it", async () => {
    const opts = { netns: HOST };
    expect(await ensureTap("shedtap0", BRIDGE, opts)).toBe("created");
    const tap = await linkInfo("shedtap0", opts);
    expect(tap).toMatchObject({ master: BRIDGE, linkinfo: { info_kind: "tun", info_data: { type: "tap" } } });
    expect(tap?.flags).toContain("UP");
    expect(await ensureTap("shedtap0", BRIDGE, opts)).toBe("existed");

    // Off the bridge and down (as left by a half-finished start): put back on and up.
    await inNs(HOST, ["ip", "link", "set", "dev", "shedtap0", "nomaster", "down"]);
    expect(await ensureTap("shedtap0", BRIDGE, opts)).toBe("existed");
    const back = await linkInfo("shedtap0", opts);
    expect(back?.master).toBe(BRIDGE);
    expect(back?.flags).toContain("UP");

    expect(await deleteTap("shedtap0", opts)).toBe("deleted");
    expect(await linkInfo("shedtap0", opts)).toBeUndefined();
    expect(await deleteTap("shedtap0", opts)).toBe("absent");

    const missing = await errorOf(ensureTap("shedtap1", "nobr0", opts));
    expect(missing.message).toContain("the bridge nobr0 (vm_bridge) does not exist");
    expect(missing.hint).toContain("shed-server setup");
    expect(await linkInfo("shedtap1", opts)).toBeUndefined();

    await inNs(HOST, ["ip", "link", "add", "vx0", "type", "veth", "peer", "name", "vx1"]);
    expect((await errorOf(ensureTap("shedtap1", "vx0", opts))).message).toContain(
      "vm_bridge vx0 is a veth interface, not a bridge",
    );
    expect((await errorOf(ensureTap("vx0", BRIDGE, opts))).message).toContain(
      "vx0 exists on this host and is a veth interface, not a TAP device",
    );
    expect((await errorOf(deleteTap("vx0", opts))).message).toContain("refusing to delete vx0");
    expect(await linkInfo("vx0", opts)).toBeDefined();
  });

  it("left the host's own namespace alone", async () => {
    // Other tests' containers come and go meanwhile: look only for the names this file made.
    const ours = /^(shedbr0|shedtap\d+|gst0|up0|lan[01]|vx[01]|nobr0)$/;
    expect((await hostLinkNames()).filter((n) => ours.test(n))).toEqual(hostLinksBefore.filter((n) => ours.test(n)));
  });
});
