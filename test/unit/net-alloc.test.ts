import { execFile } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import {
  allocateNetwork,
  macForIp,
  pendingNetworks,
  planSubnet,
  recordedNetworks,
  releasePendingNetwork,
} from "../../src/backends/firecracker/net-alloc.js";
import { createInstanceDir, instancePath } from "../../src/backends/vm/instance-dir.js";
import { type InstanceNetwork, writeInstanceMeta } from "../../src/backends/vm/instance-meta.js";
import { ShedError } from "../../src/core/errors.js";
import { REPO_ROOT, tempDir } from "../helpers/cli.js";

const execFileAsync = promisify(execFile);
const SUBNET = "172.30.0.0/24";

/** What a create does once the network is allocated: write it into the instance's metadata, then release it. */
function record(dataDir: string, name: string, network: InstanceNetwork): void {
  const dir = createInstanceDir(dataDir, name);
  writeInstanceMeta(dir, {
    version: 1,
    name,
    backend: "firecracker",
    image: "/images/shed-vm-x86_64",
    arch: "x86_64",
    created_at: "2026-01-01T00:00:00.000Z",
    server_id: "srv-1",
    agent_transport: "vsock",
    ports: {},
    hypervisor: null,
    helpers: {},
    memory_mib: 1024,
    cpus: 2,
    network,
  });
  releasePendingNetwork(network);
}

/** A new shed-server process on the same data_dir: nothing pending, only the metadata to go by. */
async function allocateInFreshProcess(dataDir: string, subnet: string) {
  const { stdout } = await execFileAsync(
    process.execPath,
    ["--import", "tsx", join(REPO_ROOT, "test/fixtures/net-alloc-child.ts"), dataDir, subnet],
    { cwd: REPO_ROOT, timeout: 30_000 },
  );
  return JSON.parse(stdout) as { pendingBefore: number; net: InstanceNetwork };
}

function errorOf(fn: () => unknown): ShedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error("expected an error");
}

afterEach(() => {
  for (const n of pendingNetworks()) releasePendingNetwork(n);
});

describe("planSubnet", () => {
  it("gives the bridge the first host address and the guests the rest up to the broadcast", () => {
    expect(planSubnet("172.30.0.0/24")).toEqual({
      bridgeIp: "172.30.0.1",
      netmask: "255.255.255.0",
      prefix: 24,
      gateway: "172.30.0.1",
      firstGuest: "172.30.0.2",
      lastGuest: "172.30.0.254",
    });
    expect(planSubnet("10.200.0.0/16")).toMatchObject({
      netmask: "255.255.0.0",
      bridgeIp: "10.200.0.1",
      lastGuest: "10.200.255.254",
    });
    expect(planSubnet("192.168.7.248/29")).toEqual({
      bridgeIp: "192.168.7.249",
      netmask: "255.255.255.248",
      prefix: 29,
      gateway: "192.168.7.249",
      firstGuest: "192.168.7.250",
      lastGuest: "192.168.7.254",
    });
    // The top of the address space: no sign or overflow trouble in the 32-bit arithmetic.
    expect(planSubnet("255.255.255.248/29")).toMatchObject({
      bridgeIp: "255.255.255.249",
      lastGuest: "255.255.255.254",
    });
  });

  it.each([
    ["172.30.0.0/30", "prefix /30 is out of range"],
    ["172.30.0.0/15", "prefix /15 is out of range"],
    ["172.30.0.5/24", "host bits set for /24; the network is 172.30.0.0/24"],
    ["172.30.0.0", "not an IPv4 CIDR"],
    ["172.30.0/24", "172.30.0 is not an IPv4 address"],
    ["256.0.0.0/16", "256.0.0.0 is not an IPv4 address"],
    ["", "not an IPv4 CIDR"],
  ])("refuses %j, naming the subnet and why", (cidr, why) => {
    const e = errorOf(() => planSubnet(cidr));
    expect(e.code).toBe("INVALID_CONFIG");
    expect(e.message).toContain(`vm_subnet ${JSON.stringify(cidr)}`);
    expect(e.message).toContain(why);
    expect(e.hint).toContain("vm_subnet");
  });
});

describe("allocateNetwork", () => {
  it("two allocations differ in every field; the first are the lowest, with a MAC made from the IP", () => {
    const data = tempDir("net-alloc");
    const a = allocateNetwork(data, SUBNET);
    const b = allocateNetwork(data, SUBNET);
    expect(a).toEqual({ tap: "shedtap0", ip: "172.30.0.2", mac: "06:00:ac:1e:00:02", cid: 3 });
    expect(b).toEqual({ tap: "shedtap1", ip: "172.30.0.3", mac: "06:00:ac:1e:00:03", cid: 4 });
    expect(pendingNetworks()).toEqual([a, b]);
  });

  it("the MAC is locally administered unicast and unique per IP", () => {
    const mac = macForIp("10.1.2.3");
    expect(mac).toBe("06:00:0a:01:02:03");
    const first = Number.parseInt(mac.slice(0, 2), 16);
    expect(first & 0x02).toBe(0x02);
    expect(first & 0x01).toBe(0);
    expect(macForIp("10.1.2.4")).not.toBe(mac);
  });

  it("a released allocation never written to metadata (a failed create) is free again", () => {
    const data = tempDir("net-alloc");
    const a = allocateNetwork(data, SUBNET);
    releasePendingNetwork(a);
    expect(allocateNetwork(data, SUBNET)).toEqual(a);
  });

  it("a fresh server on the same data_dir never repeats a recorded network, running or stopped", async () => {
    const data = tempDir("net-alloc");
    const a = allocateNetwork(data, SUBNET);
    const b = allocateNetwork(data, SUBNET);
    const c = allocateNetwork(data, SUBNET);
    record(data, "a", a);
    record(data, "b", b);
    record(data, "c", c);
    expect(pendingNetworks()).toEqual([]);
    expect(recordedNetworks(data)).toEqual([a, b, c]);

    const first = await allocateInFreshProcess(data, SUBNET);
    expect(first.pendingBefore).toBe(0);
    for (const old of [a, b, c]) {
      expect(first.net.tap).not.toBe(old.tap);
      expect(first.net.ip).not.toBe(old.ip);
      expect(first.net.mac).not.toBe(old.mac);
      expect(first.net.cid).not.toBe(old.cid);
    }
    expect(first.net).toEqual({ tap: "shedtap3", ip: "172.30.0.5", mac: "06:00:ac:1e:00:05", cid: 6 });

    // Deleting an instance (its directory goes) frees exactly its network; the others stay taken.
    rmSync(join(data, "vm", "b"), { recursive: true });
    const second = await allocateInFreshProcess(data, SUBNET);
    expect(second.net).toEqual(b);
  });

  it("a damaged metadata file does not stop allocation; a readable network in it stays reserved", () => {
    const data = tempDir("net-alloc");
    const a = allocateNetwork(data, SUBNET);
    record(data, "a", a);
    const b = allocateNetwork(data, SUBNET);
    record(data, "b", b);
    // "a": not JSON at all. "b": a newer server's file this one cannot parse, network still readable.
    writeFileSync(instancePath(join(data, "vm", "a"), "meta"), "{ not json");
    writeFileSync(instancePath(join(data, "vm", "b"), "meta"), JSON.stringify({ version: 99, network: b }));
    createInstanceDir(data, "no-meta-yet");

    expect(recordedNetworks(data)).toEqual([b]);
    const next = allocateNetwork(data, SUBNET);
    expect(next).toEqual(a);
    expect(allocateNetwork(data, SUBNET).ip).toBe("172.30.0.4");
  });

  it("a full subnet is an error naming it, with the hint to widen vm_subnet", () => {
    const data = tempDir("net-alloc");
    const subnet = "172.30.0.8/29";
    const ips = [1, 2, 3, 4, 5].map(() => allocateNetwork(data, subnet).ip);
    expect(ips).toEqual(["172.30.0.10", "172.30.0.11", "172.30.0.12", "172.30.0.13", "172.30.0.14"]);
    const e = errorOf(() => allocateNetwork(data, subnet));
    expect(e.code).toBe("BACKEND_ERROR");
    expect(e.message).toContain("vm_subnet 172.30.0.8/29");
    expect(e.message).toContain("all 5 (172.30.0.10 to 172.30.0.14)");
    expect(e.hint).toContain("widen vm_subnet");
    expect(pendingNetworks()).toHaveLength(5);
  });

  it("instances recorded under an older, different subnet keep their TAP and CID", () => {
    const data = tempDir("net-alloc");
    const old = allocateNetwork(data, "10.9.0.0/24");
    record(data, "old", old);
    const now = allocateNetwork(data, SUBNET);
    expect(now).toEqual({ tap: "shedtap1", ip: "172.30.0.2", mac: "06:00:ac:1e:00:02", cid: 4 });
  });
});
