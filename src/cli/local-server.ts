import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ShedError } from "../core/errors.js";
import { ApiClient } from "./api-client.js";
import type { ClientConfig, ServerEntry } from "./client-config.js";
import { addServer } from "./server-registry.js";

const LOCAL = { name: "local", host: "127.0.0.1" };

/** The local server's ports: $SHED_LOCAL_HTTP_PORT / $SHED_LOCAL_SSH_PORT, else 8080 / 2222. */
function localPorts(): { http: number; ssh: number } {
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
 * With no server configured the CLI uses a shed-server on this machine: an
 * already running one on the local port ($SHED_LOCAL_HTTP_PORT, default 8080),
 * or one it starts in the background (config and data beside the client
 * config, log in local-server.log, pid in local-server.pid).
 */
export async function ensureLocalServer(
  cfg: ClientConfig,
  say: (line: string) => void,
): Promise<{ name: string; entry: ServerEntry }> {
  const ports = localPorts();
  if (!(await answers(ports.http))) {
    const dir = join(cfg.dir, "local-server");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
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
        `data_dir: ${JSON.stringify(join(dir, "data"))}`,
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
    while (!(await answers(ports.http))) {
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
  const added = await addServer(cfg, LOCAL.host, ports.http, LOCAL.name);
  return { name: added.name, entry: added.entry };
}

async function answers(httpPort: number): Promise<boolean> {
  try {
    await new ApiClient(LOCAL.name, { host: LOCAL.host, http_port: httpPort }).json("GET", "/api/info");
    return true;
  } catch {
    return false;
  }
}

/** The shed-server program beside this one: the bundle in dist/, or the TypeScript source under tsx. */
function serverEntry(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const bundled = join(here, "shed-server.mjs");
  if (existsSync(bundled)) return [bundled];
  return ["--import", "tsx", join(here, "..", "server", "main.ts")];
}
