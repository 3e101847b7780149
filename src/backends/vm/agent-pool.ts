import { AgentClient, type AgentDialer, AgentGuestExec } from "../../agent/client/index.js";
import type { GuestExec } from "../../guest/exec.js";

/** How to reach one VM's agent now (its ports and secret can change only while it is stopped). */
export interface AgentRoute {
  dial: AgentDialer;
  /** The per-VM secret, where the agent's port is reachable by other users of the host. */
  secret?: Buffer | string;
  /** For messages: "the agent of shed NAME". */
  where: string;
}

/**
 * One agent connection per running VM, shared by every exec, SSH session and
 * hook (the protocol multiplexes streams). A connection that ended (the VM
 * stopped or rebooted) is replaced by a fresh one on the next use.
 */
export class AgentPool {
  private readonly clients = new Map<string, Promise<AgentClient>>();

  constructor(private readonly route: (name: string) => AgentRoute) {}

  async client(name: string): Promise<AgentClient> {
    const current = this.clients.get(name);
    if (current) {
      const c = await current.catch(() => undefined);
      if (c && !c.isClosed) return c;
      this.clients.delete(name);
    }
    const r = this.route(name);
    const next = AgentClient.connect({ dial: r.dial, where: r.where, ...(r.secret ? { secret: r.secret } : {}) });
    this.clients.set(name, next);
    next.catch(() => this.clients.delete(name));
    return next;
  }

  guest(name: string): GuestExec {
    return new AgentGuestExec(() => this.client(name));
  }

  /** Closes the shed's connection (before its VM stops: nothing should wait on it). */
  async drop(name: string): Promise<void> {
    const current = this.clients.get(name);
    this.clients.delete(name);
    (await current?.catch(() => undefined))?.close();
  }
}
