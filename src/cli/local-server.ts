import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ShedError } from "../core/errors.js";
import { ApiClient } from "./api-client.js";
import type { ClientConfig, ServerEntry } from "./client-config.js";
import { addServer } from "./server-registry.js";

const LOCAL = { name: "local", host: "127.0.0.1", httpPort: 8080 };

/**
 * With no server configured the CLI uses a shed-server on this machine: an
 * already running one on the default port, or one it starts in the background
 * (config and data beside the client config, log in local-server.log).
 */
export async function ensureLocalServer(
  cfg: ClientConfig,
  say: (line: string) => void,
): Promise<{ name: string; entry: ServerEntry }> {
  if (!(await answers())) {
    const dir = join(cfg.dir, "local-server");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const configFile = join(dir, "server.yaml");
    if (!existsSync(configFile)) {
      writeFileSync(
        configFile,
        `# The CLI's on-demand local shed-server.\nname: local\ndata_dir: ${JSON.stringify(join(dir, "data"))}\n`,
      );
    }
    const log = join(cfg.dir, "local-server.log");
    say(`starting a local shed-server (log: ${log})`);
    const fd = openSync(log, "a");
    const child = spawn(process.execPath, [...serverEntry(), "serve", "--config", configFile], {
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    child.unref();
    let exited: number | null = null;
    child.on("exit", (code) => {
      exited = code ?? 1;
    });
    const deadline = Date.now() + 20_000;
    while (!(await answers())) {
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
  const added = await addServer(cfg, LOCAL.host, LOCAL.httpPort, LOCAL.name);
  return { name: added.name, entry: added.entry };
}

async function answers(): Promise<boolean> {
  try {
    await new ApiClient(LOCAL.name, { host: LOCAL.host, http_port: LOCAL.httpPort }).json("GET", "/api/info");
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
