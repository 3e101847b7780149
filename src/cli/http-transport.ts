import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import { ShedError } from "../core/errors.js";
import { x509Fingerprint } from "../core/fingerprint-format.js";

/**
 * How the CLI reaches a server's API: plain HTTP (loopback), or TLS pinned to
 * the certificate fingerprint stored at `shed server add`. The TLS handshake
 * completes and the fingerprint is checked before a single byte of the request
 * (and so the API token) is written. `firstContact` is `server add` itself: any
 * certificate is accepted and its fingerprint reported, to be pinned.
 */
export type TransportSecurity =
  | { kind: "plain" }
  | { kind: "pinned"; fingerprint: string }
  | { kind: "first-contact"; seen: (fingerprint: string) => void };

export interface Target {
  serverName: string;
  host: string;
  port: number;
  security: TransportSecurity;
}

/** Hosts whose traffic never leaves this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function baseUrl(t: Pick<Target, "host" | "port" | "security">): string {
  const host = t.host.includes(":") && !t.host.startsWith("[") ? `[${t.host}]` : t.host;
  return `${t.security.kind === "plain" ? "http" : "https"}://${host}:${t.port}`;
}

export function sendRequest(
  t: Target,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
  body: string | Readable | undefined,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const host = t.host.replace(/^\[|\]$/g, "");
    const req = httpRequest(
      {
        host,
        port: t.port,
        path,
        method,
        headers,
        // Without an agent, Node uses createConnection; the types say it returns a socket, but Node
        // also takes one handed to the callback later (after the fingerprint check).
        ...(t.security.kind === "plain"
          ? {}
          : {
              createConnection: ((_opts: unknown, done: (err: Error | null, s?: Socket) => void) =>
                secure(t, done)) as unknown as () => Socket,
            }),
      },
      resolve,
    );
    req.on("error", (err: NodeJS.ErrnoException) => reject(err instanceof ShedError ? err : unreachable(t, err)));
    if (typeof body === "string" || body === undefined) req.end(body);
    else {
      body.on("error", (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

// node:tls is loaded only for a server over TLS: about 10 ms of start-up that the commands for a
// loopback server (plain HTTP) do without.
const lazyRequire = createRequire(import.meta.url);

function secure(t: Target, done: (err: Error | null, s?: Socket) => void): undefined {
  const { connect: tlsConnect } = lazyRequire("node:tls") as typeof import("node:tls");
  const socket: TLSSocket = tlsConnect({
    host: t.host.replace(/^\[|\]$/g, ""),
    port: t.port,
    // Trust comes from the pinned fingerprint below, not from a CA: the server's certificate is usually self-signed.
    rejectUnauthorized: false,
    ALPNProtocols: ["http/1.1"],
  });
  const onError = (err: Error) => done(err);
  socket.once("error", onError);
  socket.once("secureConnect", () => {
    socket.off("error", onError);
    const cert = socket.getPeerX509Certificate();
    const got = cert ? x509Fingerprint(cert) : "none";
    const sec = t.security;
    if (sec.kind === "pinned" && got !== sec.fingerprint) {
      socket.destroy();
      done(
        new ShedError(
          "SERVER_IDENTITY_CHANGED",
          `the TLS certificate of shed-server ${t.serverName} at ${t.host}:${t.port} is not the one pinned when it was added (pinned ${sec.fingerprint}, now ${got}); nothing was sent`,
          {
            hint: `someone may be intercepting the connection. If the server's certificate was replaced on purpose (check with the fingerprint shed-server prints at start), run \`shed server add ${t.host} --port ${t.port} --name ${t.serverName} --token-file -\` again`,
          },
        ),
      );
      return;
    }
    if (sec.kind === "first-contact") sec.seen(got);
    done(null, socket);
  });
  return undefined;
}

/** A connection that failed before any HTTP answer, said in terms of what to check. */
function unreachable(t: Target, err: NodeJS.ErrnoException): ShedError {
  const code = err.code ?? err.message;
  if (t.security.kind !== "plain" && /SSL|TLS|EPROTO/i.test(`${code} ${err.message}`)) {
    return new ShedError(
      "SERVER_UNREACHABLE",
      `cannot speak TLS with shed-server ${t.serverName} at ${t.host}:${t.port} (${code})`,
      {
        hint: "the server may serve plain HTTP: only a server on this machine's loopback, or one set to insecure_http, does; check the host and port",
        details: { tls_handshake_failed: true },
      },
    );
  }
  return new ShedError(
    "SERVER_UNREACHABLE",
    `cannot reach shed-server ${t.serverName} at ${t.host}:${t.port} (${code})`,
    {
      hint: "is shed-server running there? `shed server list` shows the address the CLI uses",
    },
  );
}
