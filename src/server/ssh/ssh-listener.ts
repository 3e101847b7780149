import { createServer, type Server as NetServer, type Socket } from "node:net";
import type { Server as Ssh2Server } from "ssh2";

/** What a connection to the SSH port may cost before and after it proves who it is. */
export interface SshLimits {
  /** A connection not authenticated within this is closed (sshd's LoginGraceTime). */
  loginGraceMs: number;
  /** An authenticated client silent this long is asked to answer (sshd's ClientAliveInterval). */
  keepaliveIntervalMs: number;
  /** Unanswered keepalives in a row before the connection is dropped (sshd's ClientAliveCountMax). */
  keepaliveCountMax: number;
  /** Connections still authenticating at once; beyond it a new one is closed at once (sshd's MaxStartups). */
  maxUnauthenticated: number;
}

export const DEFAULT_SSH_LIMITS: SshLimits = {
  loginGraceMs: 30_000,
  keepaliveIntervalMs: 15_000,
  keepaliveCountMax: 3,
  maxUnauthenticated: 64,
};

/** ssh2 tells connections apart by the peer's address and port: the one key both sides know. */
export interface Peer {
  ip?: string | undefined;
  port?: number | undefined;
}

/**
 * Accepts TCP connections for the SSH server and hands them to ssh2, which has
 * no limits of its own before authentication: a connection that never sends a
 * banner, or a flood of them, would each be held forever. Here every
 * connection has a deadline to authenticate, and only so many may be
 * authenticating at once.
 */
export class SshListener {
  readonly server: NetServer;
  private readonly sockets = new Map<string, Socket>();
  private readonly pending = new Map<Socket, NodeJS.Timeout>();

  constructor(
    ssh: Ssh2Server,
    private readonly limits: SshLimits,
  ) {
    this.server = createServer((socket) => this.accept(socket, ssh));
  }

  /** The connection of this peer authenticated: it is no longer on the clock. */
  authenticated(peer: Peer): void {
    const socket = this.sockets.get(keyOf(peer));
    if (!socket) return;
    clearTimeout(this.pending.get(socket));
    this.pending.delete(socket);
  }

  /**
   * Closes this peer's connection without waiting for it: after a keepalive
   * timeout the client answers nothing, so a polite close would never finish
   * and would hold its sessions (and the processes behind them) open.
   */
  drop(peer: Peer): void {
    this.sockets.get(keyOf(peer))?.destroy();
  }

  /** Connections still authenticating; the server's own clients are ended by it. */
  dropUnauthenticated(): void {
    for (const socket of this.pending.keys()) socket.destroy();
  }

  private accept(socket: Socket, ssh: Ssh2Server): void {
    if (this.pending.size >= this.limits.maxUnauthenticated) {
      socket.destroy();
      return;
    }
    if (socket.remoteAddress === undefined) {
      // Already reset by the peer: nothing to serve, and no key to track it by.
      socket.destroy();
      return;
    }
    const key = keyOf({ ip: socket.remoteAddress, port: socket.remotePort });
    this.sockets.set(key, socket);
    this.pending.set(
      socket,
      setTimeout(() => socket.destroy(), this.limits.loginGraceMs),
    );
    socket.on("error", () => {
      // A peer that resets the connection is not the server's problem; ssh2 sees the close.
    });
    socket.once("close", () => {
      clearTimeout(this.pending.get(socket));
      this.pending.delete(socket);
      if (this.sockets.get(key) === socket) this.sockets.delete(key);
    });
    // Exit status, EOF and close are small packets sent back to back: without this, Nagle's algorithm
    // and the client's delayed ACK hold them for tens of milliseconds on every command.
    socket.setNoDelay(true);
    ssh.injectSocket(socket);
  }
}

function keyOf(peer: Peer): string {
  return `${peer.ip ?? "?"}|${peer.port ?? "?"}`;
}
