import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Server as NetServer } from "node:net";
import { join } from "node:path";
import { getRequestListener } from "@hono/node-server";
import type { Backend, Ownership } from "../backends/backend.js";
import { DockerBackend } from "../backends/docker/docker-backend.js";
import { dockerEngine } from "../backends/docker/engine.js";
import { FirecrackerBackend } from "../backends/firecracker/firecracker-backend.js";
import { hostProblem } from "../backends/host-checks.js";
import { QemuBackend } from "../backends/qemu/qemu-backend.js";
import { VzBackend } from "../backends/vz/vz-backend.js";
import { readEnvFile } from "../config/env-file.js";
import type { ServerConfig } from "../config/server-config.js";
import { loadOrCreateApiToken } from "../core/api-token.js";
import { ShedError } from "../core/errors.js";
import type { BackendName } from "../core/types.js";
import { VERSION } from "../core/version.js";
import { MetaStore } from "../lifecycle/meta-store.js";
import { ShedService } from "../lifecycle/shed-service.js";
import type { ServerInfo } from "../protocol/api-types.js";
import { createApi } from "./api/app.js";
import { AuthorizedKeys } from "./authorized-keys.js";
import { BundleStore } from "./bundles.js";
import { lockDataDir } from "./data-dir-lock.js";
import { loadOrCreateHostKey } from "./host-key.js";
import { ImageService } from "./images/image-service.js";
import { loadOrCreateServerId } from "./server-id.js";
import { createSshServer } from "./ssh/ssh-server.js";
import { type ApiTransport, apiTransport } from "./tls/api-transport.js";

export interface RunningServer {
  httpPort: number;
  sshPort: number;
  /** TLS (with the certificate's fingerprint) or plain HTTP, with the warning to print at start. */
  transport: ApiTransport;
  service: ShedService;
  /** What start-up recovery did about operations a previous server was killed in, one line each. */
  recovered: string[];
  close(): Promise<void>;
}

/** The composition root of shed-server: backends, service, HTTP API and SSH. */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  // Before anything in data_dir is read or written: one server per data_dir (data-dir-lock.ts).
  const lock = await lockDataDir(config.dataDir);
  try {
    const server = await startLocked(config);
    return {
      ...server,
      close: async () => {
        await server.close();
        await lock.release();
      },
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function startLocked(config: ServerConfig): Promise<RunningServer> {
  const env = config.envFile ? readEnvFile(config.envFile) : {};
  const meta = new MetaStore(config.dataDir);
  meta.reconcile();
  // Sheds made before server ids existed are this server's when it holds their record.
  const ownership = { serverId: loadOrCreateServerId(config.dataDir), adopts: (name: string) => meta.has(name) };
  const backends = new Map<BackendName, Backend>();
  for (const name of config.enabledBackends) backends.set(name, makeBackend(name, ownership, config));
  for (const backend of backends.values()) await backend.ping();
  // Sheds outlive a server: what they need from it (a VM's live credential sync) is taken up again.
  const reattached: string[] = [];
  for (const backend of backends.values()) reattached.push(...(await backend.reattach(config.credentials)));

  const bundles = new BundleStore(config.dataDir, { maxBytes: config.maxBundleBytes, maxAgeMs: config.bundleMaxAgeMs });
  const keys = new AuthorizedKeys(config.authorizedKeysFile);
  const hostKey = loadOrCreateHostKey(join(config.dataDir, "ssh_host_ed25519_key"));
  const token = loadOrCreateApiToken(config.dataDir);
  const transport = apiTransport(config);
  const service = new ShedService({
    config,
    backends,
    meta,
    env,
    bundlePath: (id) => bundles.resolve(id),
    hostProblem: (backend) => hostProblem(backend, config),
  });
  // Operations the previous server was killed in: finished, undone or marked interrupted before any request.
  const recovered = [...reattached, ...(await service.recover())];

  let httpPort = config.httpPort;
  let sshPort = config.sshPort;
  const info = (): ServerInfo => ({
    name: config.name,
    version: VERSION,
    http_port: httpPort,
    ssh_port: sshPort,
    ssh_host_key: hostKey.public,
    enabled_backends: [...backends.keys()],
    capabilities: Object.fromEntries([...backends.values()].map((b) => [b.name, { ...b.capabilities }])),
    default_backend: config.defaultBackend,
    default_image: config.defaultImage,
  });

  const images = new ImageService({
    config,
    docker: dockerEngine(config.dockerSocket),
    sheds: () => service.list(),
    upload: (id) => bundles.resolve(id),
  });
  const api = createApi({ service, bundles, keys, info, token, images });
  const listener = getRequestListener(api.fetch);
  const http =
    transport.kind === "tls"
      ? createHttpsServer({ cert: transport.cert, key: transport.key }, listener)
      : createHttpServer(listener);
  const ssh = createSshServer({
    service,
    keys,
    hostKey: hostKey.private,
    limits: { loginGraceMs: config.sshLoginGraceMs, keepaliveIntervalMs: config.sshKeepaliveIntervalMs },
  });

  httpPort = await listen(http, config.httpPort, config.bind, "http_port");
  try {
    sshPort = await listen(ssh.server, config.sshPort, config.bind, "ssh_port");
  } catch (err) {
    http.close();
    throw err;
  }
  return {
    httpPort,
    sshPort,
    transport,
    service,
    recovered,
    close: async () => {
      ssh.closeConnections();
      bundles.close();
      await Promise.all([closeServer(http), closeServer(ssh.server)]);
    },
  };
}

function makeBackend(name: BackendName, ownership: Ownership, config: ServerConfig): Backend {
  if (name === "docker") return new DockerBackend(ownership, config.defaultImage, dockerEngine(config.dockerSocket));
  const vm = { dataDir: config.dataDir, vm: config.vm };
  if (name === "qemu") return new QemuBackend(ownership, vm);
  if (name === "firecracker") return new FirecrackerBackend(ownership, vm);
  return new VzBackend(ownership, vm, config.credentials);
}

function listen(
  server: HttpServer | HttpsServer | NetServer,
  port: number,
  host: string,
  field: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new ShedError("INVALID_CONFIG", `cannot listen on ${host}:${port} (${field}): ${err.code ?? err.message}`, {
          hint:
            err.code === "EADDRINUSE"
              ? `another process uses port ${port}; set ${field} in the server config`
              : undefined,
        }),
      );
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: HttpServer | HttpsServer | NetServer): Promise<void> {
  return new Promise((resolve) => {
    if ("closeAllConnections" in server) server.closeAllConnections();
    server.close(() => resolve());
  });
}
