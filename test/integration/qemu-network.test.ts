// Time budget: about 1-2 minutes on 2 cores without KVM: one TCG boot (~20-40 s to the agent)
// and probes with 4-second timeouts run side by side in the guest. The QEMU is killed in afterAll.
import { readFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/agent/client/index.js";
import { QemuMachine } from "../../src/backends/qemu/qemu-machine.js";
import { GUEST_NET } from "../../src/backends/qemu/qemu-network.js";
import { agentFor, guestRun, removeVmDataDir, testImage, vmDataDir } from "../helpers/vm.js";

/**
 * The shed reaches the internet but not the host's loopback services (issue 10, section 4). The
 * guest's slirp runs in QEMU's own network namespace, so its gateway 10.0.2.2 is that namespace's
 * empty loopback, not the host's; pasta connects the namespace to the outside with --no-map-gw and
 * no namespace-to-host forwards (src/backends/qemu/qemu-network.ts). Proven from inside the guest,
 * over the agent.
 */

let dataDir: string;
let machine: QemuMachine;
let agent: AgentClient;
const servers: Server[] = [];

function listen(host: string, banner: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => s.end(`${banner}\n`));
    servers.push(srv);
    srv.once("error", reject);
    srv.listen(0, host, () => resolve((srv.address() as { port: number }).port));
  });
}

/** The host's own non-loopback IPv4 addresses (eth0, docker0...). */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === "IPv4" && !a.internal)
    .map((a) => (a as { address: string }).address);
}

/** The host's default gateway (the address pasta would map to the host's loopback without --no-map-gw). */
function hostGateway(): string | undefined {
  for (const line of readFileSync("/proc/net/route", "utf8").split("\n").slice(1)) {
    const c = line.trim().split(/\s+/);
    if (c[1] === "00000000" && c[2]) {
      const n = Number.parseInt(c[2], 16);
      return [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24].join(".");
    }
  }
  return undefined;
}

/**
 * One guest script probes many host:port pairs at once; each line of its output is
 * "<host> <port> <first bytes that came back, in hex, or FAIL>". Values arrive as positional
 * parameters, never pasted into the script.
 */
const PROBE_SCRIPT = `
probe() { r=$(timeout 4 bash -c 'exec 3<>"/dev/tcp/$1/$2" && head -c 4 <&3 | od -An -tx1 | tr -d " \\n"' _ "$1" "$2" 2>/dev/null) || r=FAIL; echo "$1 $2 \${r:-EMPTY}"; }
while [ $# -gt 1 ]; do probe "$1" "$2" & shift 2; done
wait
`;

async function probeFromGuest(targets: Array<[string, number]>): Promise<Map<string, string>> {
  const r = await guestRun(agent, [
    "bash",
    "-c",
    PROBE_SCRIPT,
    "probe",
    ...targets.flatMap(([h, p]) => [h, String(p)]),
  ]);
  expect(r.exitCode).toBe(0);
  const out = new Map<string, string>();
  for (const line of r.stdout.trim().split("\n")) {
    const [h, p, ...rest] = line.split(" ");
    out.set(`${h}:${p}`, rest.join(" "));
  }
  return out;
}

beforeAll(async () => {
  const image = testImage();
  dataDir = vmDataDir();
  machine = await QemuMachine.create({ dataDir, name: "qm-net", serverId: "test", image });
  await machine.start();
  await machine.waitForAgent(150_000);
  agent = await agentFor(machine);
});

afterAll(async () => {
  agent?.close();
  for (const s of servers) s.close();
  if (dataDir) await removeVmDataDir(dataDir);
});

describe("QEMU guest network (slirp in its own namespace, pasta --no-map-gw)", () => {
  it("a listener on the host's 127.0.0.1 is unreachable from the guest, by the gateway or any other address", async () => {
    const loopPort = await listen("127.0.0.1", "HOST-LOOPBACK");
    const gw = hostGateway();
    const targets: Array<[string, number]> = [
      [GUEST_NET.gateway, loopPort],
      [GUEST_NET.dns, loopPort],
      ["127.0.0.1", loopPort],
      ...hostAddresses().map((a): [string, number] => [a, loopPort]),
      ...(gw ? [[gw, loopPort] as [string, number]] : []),
    ];
    // Positive control: the same probe does read the agent's first bytes on the guest's own
    // port 1024, so a FAIL below means "unreachable", not "the probe is broken".
    const seen = await probeFromGuest([...targets, ["127.0.0.1", 1024]]);
    expect(seen.get("127.0.0.1:1024")).toMatch(/^[0-9a-f]{8}$/);
    for (const [h, p] of targets) {
      expect({ target: `${h}:${p}`, got: seen.get(`${h}:${p}`) }).toEqual({ target: `${h}:${p}`, got: "FAIL" });
    }
    // And the listener itself is alive: the host reaches it.
    expect(await hostReads(loopPort)).toBe("HOST-LOOPBACK");
  });

  it("the guest resolves names and fetches from Debian's and npm's registries", async () => {
    const dns = await guestRun(agent, ["getent", "hosts", "deb.debian.org"]);
    expect(dns.exitCode).toBe(0);
    expect(dns.stdout).toMatch(/deb\.debian\.org/);
    const curl = (url: string, ...opts: string[]) =>
      guestRun(agent, ["curl", "-sS", "-m", "30", ...opts, "-o", "/dev/null", "-w", "%{http_code}", url], "shed");
    const deb = await curl("http://deb.debian.org/debian/dists/bookworm/Release");
    expect(deb).toMatchObject({ exitCode: 0, stdout: "200" });
    // -k: this is about reaching the registry. Where egress re-signs TLS with its own CA (this
    // machine's does), shed-base does not trust that CA, in a Docker container or a VM alike.
    const npm = await curl("https://registry.npmjs.org/left-pad", "-k");
    expect(npm).toMatchObject({ exitCode: 0, stdout: "200" });
  });
});

function hostReads(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const s = connect({ host: "127.0.0.1", port });
    s.on("data", (d) => {
      got += d.toString();
    });
    s.on("end", () => resolve(got.trim()));
    s.on("error", reject);
  });
}
