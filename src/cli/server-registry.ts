import type { ServerInfo } from "../core/api-types.js";
import { ShedError } from "../core/errors.js";
import { ApiClient } from "./api-client.js";
import type { ClientConfig, ServerEntry } from "./client-config.js";
import { ensureKeyPair } from "./keys.js";
import { checkSshEntry } from "./ssh-config-values.js";

/**
 * `shed server add`: asks the server who it is, pins its SSH host key, and
 * registers this CLI's public key so SSH (exec, console, IDEs) works.
 */
export async function addServer(
  cfg: ClientConfig,
  host: string,
  httpPort: number,
  name?: string,
): Promise<{ name: string; entry: ServerEntry; info: ServerInfo }> {
  const probe = new ApiClient(name ?? host, { host, http_port: httpPort });
  const info = await probe.json<ServerInfo>("GET", "/api/info");
  if (typeof info?.ssh_host_key !== "string" || typeof info.ssh_port !== "number") {
    throw new ShedError("SERVER_UNREACHABLE", `${probe.base} answered, but not as a shed-server`, {
      hint: "check the host and --port (the server's http_port)",
    });
  }
  const serverName = name ?? info.name;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(serverName)) {
    throw new ShedError("INVALID_REQUEST", `server name ${JSON.stringify(serverName)} is not usable`, {
      hint: "pass --name with letters, digits, '.', '_' or '-'",
    });
  }
  // Checked before anything is kept or sent: these values go into ssh_config and known_hosts.
  checkSshEntry(serverName, { host, ssh_port: info.ssh_port, host_key: info.ssh_host_key }, { server: probe.base });
  const publicKey = await ensureKeyPair(cfg);
  await probe.json("POST", "/api/keys", { public_key: publicKey });
  const entry: ServerEntry = {
    host,
    http_port: httpPort,
    ssh_port: info.ssh_port,
    host_key: info.ssh_host_key,
  };
  cfg.data.servers[serverName] = entry;
  if (!cfg.data.default_server) cfg.data.default_server = serverName;
  cfg.save();
  return { name: serverName, entry, info };
}
