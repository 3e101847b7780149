/**
 * The Firecracker API client over a real Unix socket, against a stand-in for Firecracker's API
 * server (there is no /dev/kvm and no firecracker binary here). The stand-in is not Firecracker: it
 * checks each request against Firecracker's own API description (helpers/firecracker-spec.ts),
 * answers as Firecracker documents (204, or 400 with a fault_message), and records what it got.
 * What only real Firecracker can show (that it accepts this plan and boots) is left to
 * `npm run smoke:firecracker`.
 * Budget: a few seconds; no VM, no network beyond the socket in a temp dir.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FirecrackerApi } from "../../src/backends/firecracker/firecracker-api.js";
import {
  buildFirecrackerPlan,
  type FirecrackerRequest,
  firecrackerBootArgs,
  SEND_CTRL_ALT_DEL,
} from "../../src/backends/firecracker/firecracker-plan.js";
import { ShedError } from "../../src/core/errors.js";
import { tempDir } from "../helpers/cli.js";
import { checkFirecrackerRequest, type SpecRequest } from "../helpers/firecracker-spec.js";

interface Recorded extends SpecRequest {
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

type Behaviour =
  | { kind: "firecracker"; refuse?: { path: string; status?: number; body: string } }
  /** Reads the request and never answers. */
  | { kind: "silent" }
  /** Answers 200 and streams a body without end. */
  | { kind: "flood" };

interface StandIn {
  socket: string;
  recorded: Recorded[];
  /** Problems the spec check found, by request. */
  problems: string[];
  close(): Promise<void>;
}

const MAX_STAND_IN_BODY = 64 * 1024;
const standIns: StandIn[] = [];

afterEach(async () => {
  for (const s of standIns.splice(0)) await s.close();
});

/** A stand-in for Firecracker's API server, on a Unix socket in a fresh temp dir. */
async function startStandIn(behaviour: Behaviour): Promise<StandIn> {
  const socket = join(tempDir("fc-api"), "api.sock");
  const recorded: Recorded[] = [];
  const problems: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_STAND_IN_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const rec: Recorded = {
        method: req.method ?? "",
        path: req.url ?? "",
        contentLength: req.headers["content-length"],
        transferEncoding: req.headers["transfer-encoding"],
      };
      if (text !== "") {
        try {
          rec.body = JSON.parse(text);
        } catch {
          rec.body = text;
        }
      }
      recorded.push(rec);
      if (behaviour.kind === "silent") return;
      if (behaviour.kind === "flood") {
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        res.writeHead(200, { "Content-Type": "application/json" });
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) {
            // keep writing until the socket pushes back, then wait for drain
          }
        };
        res.on("drain", pump);
        pump();
        return;
      }
      const found = checkFirecrackerRequest({ method: rec.method, path: rec.path, body: rec.body });
      if (found.length > 0) {
        problems.push(...found);
        return answer(res, 400, JSON.stringify({ fault_message: found.join("; ") }));
      }
      const refuse = behaviour.refuse;
      if (refuse && refuse.path === rec.path) return answer(res, refuse.status ?? 400, refuse.body);
      if (rec.method === "GET") {
        return answer(
          res,
          200,
          JSON.stringify({ id: "shed-demo", state: "Not started", vmm_version: "1.8.0", app_name: "Firecracker" }),
        );
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socket, resolve);
  });
  const standIn: StandIn = {
    socket,
    recorded,
    problems,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  standIns.push(standIn);
  return standIn;
}

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }).end(body);
}

const dir = "/var/lib/shed/vm/demo";
const plan = buildFirecrackerPlan({
  kernel: "/var/lib/shed/images/base/vmlinux",
  initrd: "/var/lib/shed/images/base/initrd.img",
  bootArgs: firecrackerBootArgs({
    address: "172.30.0.5",
    gateway: "172.30.0.1",
    netmask: "255.255.255.0",
    dns: "1.1.1.1",
  }),
  rootfs: `${dir}/rootfs.ext4`,
  configDisk: `${dir}/config.img`,
  cpus: 2,
  memoryMiB: 1024,
  tap: "shedtap5",
  mac: "06:00:ac:1e:00:05",
  vsockUds: `${dir}/vsock.sock`,
  cid: 5,
});

async function rejection(p: Promise<unknown>): Promise<ShedError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShedError);
  return err as ShedError;
}

const sent = (r: SpecRequest) => ({ method: r.method, path: r.path, body: r.body });

describe("FirecrackerApi against a stand-in for Firecracker's API server", () => {
  it("applies a whole plan in order, each request as Firecracker's API describes it", async () => {
    const fc = await startStandIn({ kind: "firecracker" });
    await new FirecrackerApi(fc.socket).apply(plan);
    expect(fc.problems).toEqual([]);
    expect(fc.recorded.map(sent)).toEqual(plan.map(sent));
    for (const r of fc.recorded) {
      // Firecracker reads a body by its Content-Length and takes no chunked bodies.
      expect(r.transferEncoding).toBeUndefined();
      expect(Number(r.contentLength)).toBe(Buffer.byteLength(JSON.stringify(r.body)));
    }
  });

  it("sends SendCtrlAltDel as the documented action", async () => {
    const fc = await startStandIn({ kind: "firecracker" });
    await new FirecrackerApi(fc.socket).send(SEND_CTRL_ALT_DEL);
    expect(fc.recorded.map(sent)).toEqual([
      { method: "PUT", path: "/actions", body: { action_type: "SendCtrlAltDel" } },
    ]);
  });

  it("stops at the first refusal, naming the request and Firecracker's fault message", async () => {
    const fault = "Unable to create the block device: No such file or directory (os error 2)";
    const fc = await startStandIn({
      kind: "firecracker",
      refuse: { path: "/drives/config", body: JSON.stringify({ fault_message: fault }) },
    });
    const err = await rejection(new FirecrackerApi(fc.socket).apply(plan));
    expect(err.code).toBe("BACKEND_ERROR");
    expect(err.message).toBe(`Firecracker refused PUT /drives/config: ${fault}`);
    expect(err.hint).toMatch(/vm-plan/);
    // Nothing after the refused request was sent: no network, no vsock, no InstanceStart.
    expect(fc.recorded.map((r) => r.path)).toEqual(plan.slice(0, 4).map((r) => r.path));
  });

  it("reports a request the stand-in's spec check refuses, with the check's words", async () => {
    const fc = await startStandIn({ kind: "firecracker" });
    const bad: FirecrackerRequest = { method: "PUT", path: "/drives/rootfs", body: { drive_id: "rootfs" } };
    const err = await rejection(new FirecrackerApi(fc.socket).send(bad));
    expect(err.message).toMatch(/^Firecracker refused PUT \/drives\/rootfs: .*missing required field is_root_device/);
  });

  it("shows the start of a refusal that is not Firecracker's JSON, control characters removed", async () => {
    const fc = await startStandIn({
      kind: "firecracker",
      refuse: { path: "/vsock", status: 500, body: `{"fault_message": "bad\\u001b[31m vsock\\nsocket"}` },
    });
    const err = await rejection(new FirecrackerApi(fc.socket).send(plan[5] as FirecrackerRequest));
    expect(err.message).toBe("Firecracker refused PUT /vsock: bad [31m vsock socket");

    const fc2 = await startStandIn({
      kind: "firecracker",
      refuse: { path: "/vsock", status: 500, body: "internal trouble" },
    });
    const err2 = await rejection(new FirecrackerApi(fc2.socket).send(plan[5] as FirecrackerRequest));
    expect(err2.message).toBe('Firecracker refused PUT /vsock: HTTP 500 "internal trouble"');
  });

  it("reads a GET's JSON answer (the instance's state)", async () => {
    const fc = await startStandIn({ kind: "firecracker" });
    expect(await new FirecrackerApi(fc.socket).get("/")).toMatchObject({ state: "Not started", id: "shed-demo" });
    expect(fc.recorded.map(sent)).toEqual([{ method: "GET", path: "/", body: undefined }]);
  });

  it("gives up on a server that never answers, naming the request, the wait and the socket", async () => {
    const fc = await startStandIn({ kind: "silent" });
    const err = await rejection(new FirecrackerApi(fc.socket, { timeoutMs: 300 }).send(plan[0] as FirecrackerRequest));
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toBe(`Firecracker did not answer PUT /machine-config within 300 ms (API socket ${fc.socket})`);
    expect(fc.recorded).toHaveLength(1);
  });

  it("refuses an answer larger than its bound instead of buffering it", async () => {
    const fc = await startStandIn({ kind: "flood" });
    // A long timeout: only the size bound can end this exchange before the test's own timeout.
    const api = new FirecrackerApi(fc.socket, { timeoutMs: 120_000, maxResponseBytes: 256 * 1024 });
    const err = await rejection(api.get("/"));
    expect(err.code).toBe("BACKEND_ERROR");
    expect(err.message).toBe("Firecracker's answer to GET / is larger than 262144 bytes; it was not read");
  });

  it("names the socket when there is no Firecracker behind it", async () => {
    const socket = join(tempDir("fc-api"), "missing", "api.sock");
    const err = await rejection(new FirecrackerApi(socket).apply(plan));
    expect(err.code).toBe("BACKEND_ERROR");
    expect(err.message).toBe(
      `cannot send PUT /machine-config to Firecracker's API socket ${socket}: it does not exist`,
    );
    expect(err.hint).toMatch(/not running/);
  });
});
