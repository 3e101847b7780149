import { existsSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { ClientConfig, ServerEntry } from "./client-config.js";

/**
 * Whether the CLI's own local server is there, told without the code that
 * starts one (local-server.ts), so the quick path (quick.ts) can ask too.
 */
export const LOCAL = { name: "local", host: "127.0.0.1" };

export const localDir = (cfg: ClientConfig): string => join(cfg.dir, "local-server");

/** The CLI's own local server: marked so, or (configs written before the mark) named local with its folder here. */
export function isOwnLocalServer(cfg: ClientConfig, name: string, entry: ServerEntry): boolean {
  if (entry.local === true) return true;
  return name === LOCAL.name && entry.host === LOCAL.host && existsSync(join(localDir(cfg), "server.yaml"));
}

/** The own local server can be used as it is: something listens on its port and the CLI has its token. */
export async function localServerUp(entry: ServerEntry): Promise<boolean> {
  return entry.token !== undefined && (await listening(entry.http_port));
}

/** A TCP connect to the loopback port: cheap enough to run before every command that uses the local server. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOCAL.host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
