import { connect, type NetConnectOpts } from "node:net";
import type { AgentStreamIO, StreamHandler } from "./connection.js";

/**
 * A port forward (to the guest's loopback) or a Unix socket relay: bytes both
 * ways, half-closes passed on, until both directions ended or either side
 * gave up. The socket is paused while the host has no credit for its bytes.
 */
export function startRelay(
  target: NetConnectOpts,
  what: string,
  io: AgentStreamIO,
  release: () => void,
): Promise<StreamHandler> {
  return new Promise((resolve) => {
    const socket = connect({ ...target, allowHalfOpen: true });
    let connected = false;
    const finish = () => {
      release();
      io.end({});
    };
    socket.on("connect", () => {
      connected = true;
      io.accept({});
      resolve(handler);
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (!connected) {
        release();
        io.fail("CONNECT_FAILED", `nothing to connect to at ${what} in the guest (${err.code ?? err.message})`);
        resolve({ onCancel() {} });
        return;
      }
      socket.destroy();
    });
    socket.on("data", (buf: Buffer) => {
      socket.pause();
      io.data(buf, () => socket.resume());
    });
    socket.on("end", () => {
      io.eof();
    });
    socket.on("close", () => {
      if (connected) finish();
    });
    const handler: StreamHandler = {
      onData(buf, consumed) {
        if (socket.destroyed || socket.writableEnded) return consumed();
        socket.write(buf, () => consumed());
      },
      onEof() {
        socket.end();
      },
      onCancel() {
        socket.destroy();
      },
    };
  });
}
