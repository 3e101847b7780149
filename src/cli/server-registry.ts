import { ShedError } from "../core/errors.js";
import type { ServerInfo } from "../protocol/api-types.js";
import { ApiClient } from "./api-client.js";
import type { ClientConfig, ServerEntry } from "./client-config.js";
import { isLoopbackHost } from "./http-transport.js";
import { ensureKeyPair } from "./keys.js";
import { checkSshEntry } from "./ssh-config-values.js";

export interface AddServerOptions {
  name?: string;
  /** The server's API token (`shed-server token` there). */
  token: string | undefined;
  /** Accept a server that answers in plain HTTP off loopback. */
  insecureHttp?: boolean;
  /** The CLI's own on-demand local server. */
  local?: boolean;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * `shed server add`: asks the server who it is (over TLS when it speaks it,
 * pinning the certificate's fingerprint, as the SSH host key is pinned), proves
 * the token by registering this CLI's public key with it, and saves the entry.
 */
export async function addServer(
  cfg: ClientConfig,
  host: string,
  httpPort: number,
  opts: AddServerOptions,
): Promise<{ name: string; entry: ServerEntry; info: ServerInfo }> {
  const label = opts.name ?? host;
  if (!opts.token) {
    throw new ShedError("INVALID_REQUEST", `adding ${host} needs its API token`, {
      hint: "on the server, run `shed-server token`, and give it here on stdin: `... | shed server add HOST --token-file -` (or --token-file FILE, or $SHED_TOKEN)",
    });
  }
  if (!/^[A-Za-z0-9_-]{16,256}$/.test(opts.token)) {
    throw new ShedError(
      "INVALID_REQUEST",
      "the API token given is not one shed-server makes (letters, digits, - and _)",
      {
        hint: "copy the whole line `shed-server token` prints on the server",
      },
    );
  }
  const { info, fingerprint } = await probe(label, host, httpPort, opts);
  if (typeof info?.ssh_host_key !== "string" || typeof info.ssh_port !== "number") {
    throw new ShedError("SERVER_UNREACHABLE", `${host}:${httpPort} answered, but not as a shed-server`, {
      hint: "check the host and --port (the server's http_port)",
    });
  }
  const serverName = opts.name ?? info.name;
  if (typeof serverName !== "string" || !NAME_RE.test(serverName)) {
    throw new ShedError("INVALID_REQUEST", `server name ${JSON.stringify(serverName)} is not usable`, {
      hint: "pass --name with letters, digits, '.', '_' or '-'",
    });
  }
  // Checked before anything is kept or sent: these values go into ssh_config and known_hosts.
  checkSshEntry(
    serverName,
    { host, ssh_port: info.ssh_port, host_key: info.ssh_host_key },
    { server: `${host}:${httpPort}` },
  );
  const entry: ServerEntry = {
    host,
    http_port: httpPort,
    ssh_port: info.ssh_port,
    host_key: info.ssh_host_key,
    token: opts.token,
    ...(fingerprint ? { tls_fingerprint: fingerprint } : {}),
    ...(opts.local ? { local: true } : {}),
  };
  // Registering the key is also the proof that the token is right: nothing is saved before it worked.
  const publicKey = await ensureKeyPair(cfg);
  await new ApiClient(serverName, entry).json("POST", "/api/keys", { public_key: publicKey });
  cfg.data.servers[serverName] = entry;
  if (!cfg.data.default_server) cfg.data.default_server = serverName;
  cfg.save();
  return { name: serverName, entry, info };
}

/** GET /api/info over TLS (trust on first use), or plain HTTP where the server speaks only that. */
async function probe(
  label: string,
  host: string,
  httpPort: number,
  opts: AddServerOptions,
): Promise<{ info: ServerInfo; fingerprint?: string }> {
  let fingerprint: string | undefined;
  const endpoint = { host, http_port: httpPort };
  try {
    const tls = new ApiClient(label, endpoint, {
      kind: "first-contact",
      seen: (fp) => {
        fingerprint = fp;
      },
    });
    const info = await tls.json<ServerInfo>("GET", "/api/info");
    return { info, ...(fingerprint ? { fingerprint } : {}) };
  } catch (err) {
    if (!(err instanceof ShedError && err.details?.tls_handshake_failed)) throw err;
  }
  if (!isLoopbackHost(host) && !opts.insecureHttp) {
    throw new ShedError(
      "INVALID_REQUEST",
      `${host}:${httpPort} serves the API over plain HTTP: the token would cross the network readable by anyone on the path`,
      {
        hint: "make the server speak TLS (the default off loopback: remove insecure_http from its config), or pass --insecure-http if this network is trusted",
      },
    );
  }
  return { info: await new ApiClient(label, endpoint).json<ServerInfo>("GET", "/api/info") };
}
