import { ShedError } from "../core/errors.js";
import { safeLine } from "./safe-text.js";

/**
 * The values the CLI writes into its generated ssh_config and known_hosts
 * (ssh-files.ts) come from the client config and, at `shed server add`, from
 * the server's /api/info: the SSH port and host key. OpenSSH config has no
 * quoting that would make a line break or a space harmless, so a value with
 * one could add options (`ProxyCommand` runs a command) or trust another key.
 * Each value must match what it is, or nothing is written.
 */

/** A DNS name, IPv4 or IPv6 address (bracketed or not): no spaces, quotes, '#', '%' or control characters. */
const HOST_RE = /^[A-Za-z0-9_:[\]][A-Za-z0-9_.:[\]-]*$/;
/** `ALGORITHM BASE64`, one line: the same rule as the client config's host_key. */
export const HOST_KEY_RE = /^[a-z0-9-]+ [A-Za-z0-9+/=]+$/;

const isPort = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;

/** What is wrong with one field, or undefined. */
function fieldProblem(field: "host" | "ssh_port" | "host_key", value: unknown): string | undefined {
  switch (field) {
    case "host":
      return typeof value === "string" && HOST_RE.test(value) && value.length <= 253
        ? undefined
        : "not a host name or IP address";
    case "ssh_port":
      return isPort(value) ? undefined : "not a port number (1-65535)";
    default:
      return typeof value === "string" && HOST_KEY_RE.test(value) ? undefined : "not an SSH public host key";
  }
}

/**
 * Refuses a server entry whose host, SSH port or host key cannot be written
 * into ssh_config or known_hosts as it is. With `server` (its URL), the port
 * and key were just sent by that server (`shed server add`); without it, all
 * of it was read from the client config file `file`.
 */
export function checkSshEntry(
  name: string,
  entry: { host: unknown; ssh_port: unknown; host_key: unknown },
  from: { file: string } | { server: string },
): void {
  for (const field of ["host", "ssh_port", "host_key"] as const) {
    const problem = fieldProblem(field, entry[field]);
    if (!problem) continue;
    const value = entry[field];
    const shown = `"${safeLine(typeof value === "string" ? value : JSON.stringify(value))}"`;
    if ("server" in from && field !== "host") {
      // Named as in /api/info.
      const sent = field === "host_key" ? "ssh_host_key" : field;
      throw new ShedError("INVALID_RESPONSE", `${from.server} sent ${sent} ${shown}, which is ${problem}`, {
        hint: "that is not what a shed-server sends: check the host and --port, and add only servers you trust",
      });
    }
    const where = "file" in from ? from.file : "the command line";
    throw new ShedError("INVALID_CONFIG", `server ${name}: ${field} ${shown} in ${where} is ${problem}`, {
      hint:
        field === "host"
          ? "give the server's host name or IP address (shed server add HOST)"
          : "remove the server and add it again (shed server remove NAME; shed server add HOST)",
    });
  }
}
