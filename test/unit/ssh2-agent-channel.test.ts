import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2, { type ServerChannel } from "ssh2";
import { afterAll, describe, expect, it } from "vitest";
import "../../src/server/ssh/agent-forwarding.js";

/**
 * patches/ssh2+1.17.0.patch: ssh2's server opens an auth-agent@openssh.com
 * channel, and ssh2's own client, forwarding a real ssh-agent, answers on it.
 */
const dir = mkdtempSync(join(tmpdir(), "ssh2-agent-"));
let agent: ChildProcess | undefined;

afterAll(() => {
  agent?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("ssh2 with the agent-channel patch", () => {
  it("opens an agent channel to the client, which relays it to its agent", async () => {
    const sock = join(dir, "agent.sock");
    agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));

    const hostKey = ssh2.utils.generateKeyPairSync("ed25519").private;
    const answer = new Promise<number>((resolve, reject) => {
      const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
        client.on("authentication", (ctx) => ctx.accept());
        client.on("ready", () =>
          client.on("session", (accept) => {
            const session = accept();
            session.on("auth-agent", (ok) => ok?.());
            session.on("exec", (ok) => {
              const ch = ok();
              client.openssh_authAgent((err, agentCh: ServerChannel) => {
                if (err) return reject(err);
                // SSH_AGENTC_REQUEST_IDENTITIES; the agent answers SSH_AGENT_IDENTITIES_ANSWER (12).
                agentCh.write(Buffer.from([0, 0, 0, 1, 11]));
                agentCh.once("data", (d: Buffer) => {
                  resolve(d[4] ?? -1);
                  agentCh.end();
                  ch.exit(0);
                  ch.end();
                  server.close();
                });
              });
            });
          }),
        );
      });
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const port = typeof address === "object" && address ? address.port : 0;
        const conn = new ssh2.Client();
        conn.on("ready", () =>
          conn.exec("x", (err, stream) => (err ? reject(err) : stream.on("close", () => conn.end()))),
        );
        conn.on("error", reject);
        conn.connect({ host: "127.0.0.1", port, username: "u", agent: sock, agentForward: true });
      });
    });
    expect(await answer).toBe(12);
  }, 10_000);
});
