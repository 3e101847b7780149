import { createServer } from "node:net";
import { ShedError } from "../../core/errors.js";
import { instanceDir, listInstanceNames } from "./instance-dir.js";
import { readInstanceMeta } from "./instance-meta.js";

/**
 * Host loopback ports forwarded into VMs (the agent's exec and control ports under QEMU). A port
 * is recorded in the instance's metadata when allocated and kept for the instance's life, so a
 * restarted server and a restarted VM use the same one, and no two instances are ever given the
 * same port, whether they are running or not.
 *
 * The kernel picks the port (bind to 127.0.0.1:0): it knows what is free right now. Ports in use
 * by a stopped instance are not bound by anyone at that moment, so they are excluded by reading
 * every instance's metadata, and ports handed out by this process but not yet written to any
 * metadata are excluded through `pending`.
 */
const pending = new Set<number>();

/** Every forwarded port recorded in any instance's metadata under data_dir. */
export function recordedPorts(dataDir: string): Set<number> {
  const ports = new Set<number>();
  for (const name of listInstanceNames(dataDir)) {
    try {
      const meta = readInstanceMeta(instanceDir(dataDir, name));
      for (const p of Object.values(meta?.ports ?? {})) ports.add(p);
    } catch {
      // A damaged metadata file is reported where the instance is used; it reserves nothing.
    }
  }
  return ports;
}

/** A port the kernel says is free on 127.0.0.1 right now. */
export function probeFreeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === "object") resolve(addr.port);
        else reject(new Error("no address"));
      });
    });
  });
}

/** True when nothing listens on 127.0.0.1:port (so a forwarder can bind it). */
export function isLoopbackPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ host: "127.0.0.1", port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * Allocates `names.length` distinct free loopback ports, none recorded by another instance. The
 * result stays reserved in this process until `releasePending` (call it once the ports are in
 * the metadata, or the create failed).
 */
export async function allocateLoopbackPorts(
  dataDir: string,
  names: readonly string[],
  probe: () => Promise<number> = probeFreeLoopbackPort,
): Promise<Record<string, number>> {
  const taken = recordedPorts(dataDir);
  const out: Record<string, number> = {};
  for (const name of names) {
    let port: number | undefined;
    for (let attempt = 0; attempt < 50 && port === undefined; attempt++) {
      const p = await probe();
      if (!taken.has(p) && !pending.has(p)) port = p;
    }
    if (port === undefined) {
      throw new ShedError("BACKEND_ERROR", "could not find a free loopback port to forward to the VM", {
        hint: "the host's ephemeral port range is exhausted; check `ss -ltn` for what holds them",
      });
    }
    pending.add(port);
    out[name] = port;
  }
  return out;
}

export function releasePending(ports: Record<string, number>): void {
  for (const p of Object.values(ports)) pending.delete(p);
}
