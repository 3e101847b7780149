import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadOrCreateApiToken } from "../core/api-token.js";
import { ShedError } from "../core/errors.js";
import type { ServerInfo } from "../protocol/api-types.js";
import { ApiClient } from "./api-client.js";
import type { ClientConfig, ServerEntry } from "./client-config.js";
import { LOCAL, listening, localDir, localServerUp } from "./local-server-state.js";
import { addServer } from "./server-registry.js";

interface Ports {
  http: number;
  ssh: number;
}

/** The local server's ports: $SHED_LOCAL_HTTP_PORT / $SHED_LOCAL_SSH_PORT, else 8080 / 2222. */
function localPorts(): Ports {
  return { http: portFromEnv("SHED_LOCAL_HTTP_PORT", 8080), ssh: portFromEnv("SHED_LOCAL_SSH_PORT", 2222) };
}

function portFromEnv(variable: string, fallback: number): number {
  const raw = process.env[variable];
  if (raw === undefined || raw === "") return fallback;
  const port = Number(raw);
  if (!/^[0-9]+$/.test(raw) || port < 1 || port > 65535) {
    throw new ShedError("INVALID_REQUEST", `${variable}=${JSON.stringify(raw)} is not a port number`, {
      hint: `set ${variable} to a port between 1 and 65535, or unset it for the default ${fallback}`,
    });
  }
  return port;
}

/**
 * With no server configured the CLI uses a shed-server on this machine: one
 * it started earlier, or one it starts now in the background (config and data
 * beside the client config, log in local-server.log, pid in local-server.pid).
 * The token is made here, in the server's data dir, before the server starts,
 * so the CLI knows it; something else answering on the port is never adopted
 * unless it accepts that token.
 */
export async function ensureLocalServer(
  cfg: ClientConfig,
  say: (line: string) => void,
  ports: Ports = localPorts(),
): Promise<{ name: string; entry: ServerEntry }> {
  const dir = localDir(cfg);
  const dataDir = join(dir, "data");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = loadOrCreateApiToken(dataDir);
  const found = await probeLocal(ports.http, token);
  if (found === "foreign") {
    throw new ShedError(
      "SERVER_UNREACHABLE",
      `a shed-server answers on ${LOCAL.host}:${ports.http}, but it does not accept this CLI's token: it is not the local server this CLI starts (that one keeps its data in ${dataDir})`,
      {
        hint: `to use it, add it: shed-server token --config ITS_CONFIG | shed server add ${LOCAL.host} --port ${ports.http} --token-file -; or set SHED_LOCAL_HTTP_PORT (and SHED_LOCAL_SSH_PORT) to free ports for the CLI's own`,
      },
    );
  }
  if (found === "other") {
    throw new ShedError(
      "SERVER_UNREACHABLE",
      `something that is not a shed-server answers on ${LOCAL.host}:${ports.http}, where the CLI would start its local server`,
      { hint: "stop that program, or set SHED_LOCAL_HTTP_PORT (and SHED_LOCAL_SSH_PORT) to free ports" },
    );
  }
  if (found === "absent") await startLocalServer(cfg, dir, dataDir, ports, token, say);
  const added = await addServer(cfg, LOCAL.host, ports.http, { name: LOCAL.name, token, local: true });
  return { name: added.name, entry: added.entry };
}

/**
 * The CLI's own local server is gone (a reboot, a kill): start it again on the
 * same ports and data dir, so its sheds are all still there, and say so.
 */
export async function reviveLocalServer(
  cfg: ClientConfig,
  entry: ServerEntry,
  say: (line: string) => void,
): Promise<{ name: string; entry: ServerEntry }> {
  if (await localServerUp(entry)) return { name: LOCAL.name, entry };
  if (!(await listening(entry.http_port))) {
    say(
      `the local shed-server is not running; starting it again (its sheds are kept in ${join(localDir(cfg), "data")})`,
    );
  }
  return ensureLocalServer(cfg, say, { http: entry.http_port, ssh: entry.ssh_port });
}

async function startLocalServer(
  cfg: ClientConfig,
  dir: string,
  dataDir: string,
  ports: Ports,
  token: string,
  say: (line: string) => void,
): Promise<void> {
  const configFile = join(dir, "server.yaml");
  // Rewritten on each start, so its ports are always the ones probed here.
  writeFileSync(
    configFile,
    [
      "# The CLI's on-demand local shed-server, regenerated on each start (ports: $SHED_LOCAL_HTTP_PORT,",
      "# $SHED_LOCAL_SSH_PORT). For other settings run a shed-server yourself and `shed server add` it.",
      "name: local",
      `http_port: ${ports.http}`,
      `ssh_port: ${ports.ssh}`,
      `data_dir: ${JSON.stringify(dataDir)}`,
      "",
    ].join("\n"),
  );
  const log = join(cfg.dir, "local-server.log");
  say(`starting a local shed-server (log: ${log})`);
  const fd = openSync(log, "a");
  const child = spawn(process.execPath, [...serverEntry(), "serve", "--config", configFile], {
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  child.unref();
  // So the server can be found and stopped later: `kill $(cat local-server.pid)`.
  writeFileSync(join(cfg.dir, "local-server.pid"), `${child.pid}\n`);
  let exited: number | null = null;
  child.on("exit", (code) => {
    exited = code ?? 1;
  });
  const deadline = Date.now() + 20_000;
  while ((await probeLocal(ports.http, token)) !== "ours") {
    if (exited !== null) {
      throw new ShedError("SERVER_UNREACHABLE", `the local shed-server exited (code ${exited}) before it was ready`, {
        hint: `see ${log}`,
      });
    }
    if (Date.now() > deadline) {
      throw new ShedError("SERVER_UNREACHABLE", "the local shed-server did not answer within 20s", {
        hint: `see ${log}`,
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Who answers on the local port: nobody, our server (it takes our token), another shed-server, or another program. */
async function probeLocal(httpPort: number, token: string): Promise<"absent" | "ours" | "foreign" | "other"> {
  if (!(await listening(httpPort))) return "absent";
  const api = new ApiClient(LOCAL.name, { host: LOCAL.host, http_port: httpPort, token });
  let info: ServerInfo | undefined;
  try {
    info = await api.json<ServerInfo>("GET", "/api/info");
  } catch {
    return "other";
  }
  if (typeof info?.ssh_host_key !== "string") return "other";
  try {
    await api.json("GET", "/api/sheds");
    return "ours";
  } catch (err) {
    if (err instanceof ShedError && err.code === "UNAUTHORIZED") return "foreign";
    throw err;
  }
}

/** The shed-server program beside this one: the bundle in dist/, or the TypeScript source under tsx. */
function serverEntry(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const bundled = join(here, "shed-server.mjs");
  if (existsSync(bundled)) return [bundled];
  return ["--import", "tsx", join(here, "..", "server", "main.ts")];
}
