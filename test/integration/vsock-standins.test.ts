/**
 * The host side of the VZ backend's vsock transport, against a stand-in for vfkit in front of the
 * REAL agent (dist/agent/shed-agent.cjs on Unix sockets, as test/integration/agent.test.ts runs it).
 * vsock itself is never touched: it cannot be used on this machine (and AF_VSOCK here would reach
 * the machine's own host).
 *
 * vfkit's convention, as its doc/usage.md and pkg/vf/vsock.go (crc-org/vfkit) describe it for
 * `--device virtio-vsock,port=P,socketURL=S,connect`: vfkit listens on the Unix socket S, and each
 * connection accepted there is connected to the guest's vsock port P and piped both ways, with no
 * handshake of its own; when nothing in the guest listens on P, the accepted connection is closed.
 * The stand-in below does exactly that, for the sockets and ports the argv built by buildVfkitArgv
 * asks for, with the agent's Unix sockets playing the guest ports.
 *
 * Firecracker's CONNECT/OK stand-in (bytes after the OK line kept, a refused port) is in
 * agent.test.ts; only the refusal real Firecracker gives (it closes the connection without a reply
 * line) is added here.
 *
 * Budget: about 5 s (one agent; everything else is local sockets).
 */
import { mkdirSync } from "node:fs";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient } from "../../src/agent/client/agent-client.js";
import { AgentGuestExec } from "../../src/agent/client/agent-guest-exec.js";
import { firecrackerDialer, unixDialer } from "../../src/agent/client/dialers.js";
import { buildVfkitArgv, vfkitVsockSocketPath } from "../../src/backends/vz/vfkit-argv.js";
import { runCollect } from "../../src/guest/exec.js";
import { FrameParser, FrameType } from "../../src/protocol/agent-frames.js";
import { killAgents, type RunningAgent, startAgent } from "../helpers/agent.js";
import { tempDir } from "../helpers/cli.js";

const dir = tempDir("vsock-standins");
const EXEC_PORT = 1024;
const CONTROL_PORT = 1025;
/** Asked for in the argv, but nothing in the "guest" listens on it. */
const SILENT_PORT = 1026;

let agent: RunningAgent;

function mkdir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
const servers: Server[] = [];
const sockets = new Set<Socket>();

/** The virtio-vsock devices of a vfkit argv, read as its doc writes them (split on commas, key=value). */
function vsockDevices(argv: string[]): { port: number; socketURL: string; connect: boolean }[] {
  return argv.flatMap((a, i) => {
    if (argv[i - 1] !== "--device" || !a.startsWith("virtio-vsock,")) return [];
    const opts = new Map(
      a
        .split(",")
        .slice(1)
        .map((o) => [o.split("=")[0], o.split("=").slice(1).join("=")]),
    );
    return [
      { port: Number(opts.get("port")), socketURL: opts.get("socketURL") as string, connect: opts.has("connect") },
    ];
  });
}

/** vfkit's host side for one `connect` device: listen on the socket, pipe each connection to the guest's port. */
function vfkitStandIn(socketPath: string, guestPort: string | undefined): Promise<Server> {
  const server = createServer((host) => {
    sockets.add(host);
    if (guestPort === undefined) {
      // Nobody listens on the guest port: vfkit's vsock connect fails and it closes the connection.
      host.destroy();
      return;
    }
    const guest = netConnect(guestPort);
    sockets.add(guest);
    host.pipe(guest).pipe(host);
    const close = () => {
      host.destroy();
      guest.destroy();
    };
    host.on("error", close).on("close", close);
    guest.on("error", close).on("close", close);
  });
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve(server));
  });
}

beforeAll(async () => {
  agent = await startAgent(mkdir(join(dir, "agent")));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await agent?.stop();
  killAgents();
});

describe("vfkit's per-port Unix socket (virtio-vsock connect mode)", () => {
  let argv: string[];
  const instance = join(dir, "instance");

  beforeAll(async () => {
    argv = buildVfkitArgv({
      binary: "vfkit",
      cpus: 2,
      memoryMiB: 1024,
      kernel: "/img/Image",
      initrd: "/img/initrd.img",
      cmdline: "root=/dev/vda console=hvc0 shed.agent=vsock",
      rootDisk: join(instance, "root.img"),
      configDisk: join(instance, "config.img"),
      mac: "52:54:00:00:00:02",
      vsock: [EXEC_PORT, CONTROL_PORT, SILENT_PORT].map((port) => ({
        port,
        socket: vfkitVsockSocketPath(instance, port),
      })),
      shares: [],
      serialLog: join(instance, "serial.log"),
    });
    const guestPorts = new Map([
      [EXEC_PORT, agent.exec],
      [CONTROL_PORT, agent.control],
    ]);
    const devices = vsockDevices(argv);
    expect(devices.map((d) => d.port)).toEqual([EXEC_PORT, CONTROL_PORT, SILENT_PORT]);
    mkdir(instance);
    for (const d of devices) {
      // Only `connect` makes vfkit listen on the socket; the default (`listen`) would have it dial out.
      expect(d.connect).toBe(true);
      await vfkitStandIn(d.socketURL, guestPorts.get(d.port));
    }
  });

  it("carries the agent protocol straight through: health and an exec on the exec port, health on the control port", async () => {
    const exec = await AgentClient.connect({
      dial: unixDialer(vfkitVsockSocketPath(instance, EXEC_PORT)),
      where: "the agent via vfkit",
    });
    try {
      const h = await exec.health();
      expect(h.draining).toBe(false);
      expect(h.inFlight).toBe(0);
      const r = await runCollect(new AgentGuestExec(exec), {
        argv: ["sh", "-c", 'echo "through $1"', "sh", "vfkit"],
        user: "root",
      });
      expect(r).toEqual({ exitCode: 0, stdout: "through vfkit\n", stderr: "" });
    } finally {
      exec.close();
    }
    const control = await AgentClient.connect({ dial: unixDialer(vfkitVsockSocketPath(instance, CONTROL_PORT)) });
    try {
      expect((await control.health()).protocolVersion).toBeGreaterThan(0);
    } finally {
      control.close();
    }
  });

  it("puts no handshake of its own on the socket: the first bytes are the agent's HELLO", async () => {
    const raw = netConnect(vfkitVsockSocketPath(instance, EXEC_PORT));
    sockets.add(raw);
    const first = await new Promise<Buffer>((resolve, reject) => {
      raw.once("data", resolve);
      raw.once("error", reject);
    });
    raw.destroy();
    const frames = new FrameParser().push(first);
    expect(frames[0]?.type).toBe(FrameType.HELLO);
  });

  it("says so when the guest port has no listener (vfkit closes the connection) or vfkit is not running", async () => {
    await expect(
      AgentClient.connect({
        dial: unixDialer(vfkitVsockSocketPath(instance, SILENT_PORT)),
        where: "the agent via vfkit",
      }),
    ).rejects.toThrow("the agent via vfkit closed the connection during the handshake");
    const absent = join(dir, "stopped", "vsock-1024.sock");
    await expect(AgentClient.connect({ dial: unixDialer(absent) })).rejects.toThrow(
      `cannot reach the guest agent at ${absent}: ENOENT`,
    );
  });
});

describe("Firecracker's vsock socket when the guest port has no listener", () => {
  it("fails naming the socket and the port when Firecracker closes the connection without a reply line", async () => {
    const path = join(dir, "fc-closed.sock");
    const server = createServer((s) => {
      sockets.add(s);
      // Firecracker reads the CONNECT line, finds no listener on the guest port, and hangs up.
      s.once("data", () => s.end());
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(path, r));
    await expect(AgentClient.connect({ dial: firecrackerDialer(path, SILENT_PORT) })).rejects.toThrow(
      `the vsock proxy at ${path} refused port ${SILENT_PORT}: it closed the connection`,
    );
  });
});
