import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ShedError } from "../../core/errors.js";

/** Opens a fresh byte stream to an agent (each AgentClient owns one). */
export type AgentDialer = () => Promise<Duplex>;

const CONNECT_TIMEOUT_MS = 10_000;

function dial(opts: { path: string } | { host: string; port: number }, what: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(opts);
    const timer = setTimeout(() => socket.destroy(new Error("timed out")), CONNECT_TIMEOUT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.setNoDelay?.(true);
      resolve(socket);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new ShedError("BACKEND_ERROR", `cannot reach the guest agent at ${what}: ${err.code ?? err.message}`, {
          hint: "the VM may still be booting, or have stopped",
          cause: err,
        }),
      );
    });
  });
}

export function unixDialer(path: string): AgentDialer {
  return () => dial({ path }, path);
}

export function tcpDialer(host: string, port: number): AgentDialer {
  return () => dial({ host, port }, `${host}:${port}`);
}

/** `unix:PATH` or `tcp:HOST:PORT`, the agent's own --listen syntax. */
export function dialerFor(address: string): AgentDialer {
  if (address.startsWith("unix:")) return unixDialer(address.slice(5));
  const m = /^tcp:(.+):([0-9]{1,5})$/.exec(address);
  if (m) return tcpDialer((m[1] as string).replace(/^\[(.*)\]$/, "$1"), Number(m[2]));
  throw new ShedError("INVALID_REQUEST", `${address.slice(0, 100)} is not an agent address`, {
    hint: "use unix:PATH or tcp:HOST:PORT",
  });
}

/** The longest reply line accepted before OK: Firecracker's is a dozen bytes. */
const MAX_HANDSHAKE_LINE = 256;

/**
 * Firecracker's host side of vsock: connect to the VM's Unix socket, write
 * `CONNECT <port>\n`, and read `OK <host port>\n`. Bytes after that line are
 * the agent's (its HELLO can arrive in the same read) and are handed on first.
 */
export function firecrackerDialer(udsPath: string, port: number): AgentDialer {
  return async () => {
    const socket = await dial({ path: udsPath }, `${udsPath} (vsock port ${port})`);
    return new Promise<Duplex>((resolve, reject) => {
      let buffered = Buffer.alloc(0);
      const fail = (why: string) => {
        socket.destroy();
        reject(
          new ShedError("BACKEND_ERROR", `the vsock proxy at ${udsPath} refused port ${port}: ${why}`, {
            hint: "the guest agent may not be listening yet",
          }),
        );
      };
      const onData = (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        const nl = buffered.indexOf(0x0a);
        if (nl < 0) {
          if (buffered.length > MAX_HANDSHAKE_LINE) fail("no reply line");
          return;
        }
        socket.off("data", onData);
        socket.off("end", onEnd);
        const line = buffered.subarray(0, nl).toString("latin1");
        if (!/^OK [0-9]+$/.test(line)) return fail(JSON.stringify(line.slice(0, 80)));
        const rest = buffered.subarray(nl + 1);
        socket.pause();
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
      };
      const onEnd = () => fail("it closed the connection");
      socket.on("data", onData);
      socket.once("end", onEnd);
      socket.write(`CONNECT ${port}\n`);
    });
  };
}
