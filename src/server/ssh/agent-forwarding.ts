import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { Connection, ServerCallback } from "ssh2";
import { type AgentRelay, startAgentRelay } from "../../guest/agent-relay.js";
import type { GuestExec } from "../../guest/exec.js";
import { STABLE_AGENT_LINK } from "../../protocol/agent-link.js";

declare module "ssh2" {
  interface Connection {
    /** Opens an auth-agent@openssh.com channel to the client (patches/ssh2+1.17.0.patch). */
    openssh_authAgent(callback: ServerCallback): this;
  }
}

/**
 * The forwarded agent of one SSH connection: started in the guest on the first
 * session that asked for it (auth-agent-req@openssh.com, which ssh2 only delivers
 * on an authenticated connection), shared by that connection's later sessions,
 * and ended with the connection, which removes the socket in the guest.
 */
export class ConnectionAgent {
  private relay?: Promise<AgentRelay>;
  private closed = false;

  constructor(private readonly client: Connection) {
    client.on("close", () => this.close());
  }

  /**
   * The guest socket's path, for SSH_AUTH_SOCK. The relay runs as the sessions'
   * user (all of one connection's sessions reach one shed, so one user).
   */
  async socketPath(guest: GuestExec, user: string): Promise<string> {
    if (!this.relay) {
      const dir = `/tmp/shed-agent-${randomBytes(6).toString("hex")}`;
      this.relay = startAgentRelay(guest, dir, () => this.openChannel(), { link: STABLE_AGENT_LINK, user });
      // A relay started after the connection went away is ended at once.
      void this.relay.then(
        (r) => {
          if (this.closed) r.close();
        },
        () => {},
      );
    }
    return (await this.relay).socketPath;
  }

  private openChannel(): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error("connection closed"));
        return;
      }
      this.client.openssh_authAgent((err, channel) => (err ? reject(err) : resolve(channel)));
    });
  }

  private close(): void {
    this.closed = true;
    void this.relay?.then(
      (r) => r.close(),
      () => {},
    );
  }
}
