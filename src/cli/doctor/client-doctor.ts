import { type DoctorCheck, type DoctorReport, report } from "../../core/doctor-report.js";
import { ShedError, toShedError } from "../../core/errors.js";
import { findOnPath } from "../../core/find-on-path.js";
import type { ServerInfo, ShedListResponse } from "../../protocol/api-types.js";
import { ApiClient } from "../api-client.js";
import type { ClientConfig, ServerEntry } from "../client-config.js";
import { isLoopbackHost } from "../http-transport.js";
import { isOwnLocalServer, localServerUp } from "../local-server-state.js";
import { scanHostKey } from "./host-key-scan.js";
import { sshBlockCheck } from "./ssh-block-check.js";

/**
 * `shed doctor`: whether this CLI can use each configured server (reachable, the pinned TLS
 * certificate and SSH host key still the server's, the token accepted) and OpenSSH (the ssh
 * binary, the managed block in ~/.ssh/config). It starts nothing: the CLI's own local server,
 * when it is down, is only reported.
 */
export async function runClientDoctor(cfg: ClientConfig): Promise<DoctorReport> {
  const ssh = findOnPath("ssh");
  const checks: DoctorCheck[] = [
    ssh
      ? { check: "ssh", status: "ok", detail: ssh }
      : {
          check: "ssh",
          status: "fail",
          detail: "no ssh on PATH: shed console, exec and attach run OpenSSH's client",
          hint: "install OpenSSH's client (apt-get install openssh-client)",
        },
  ];
  const names = Object.keys(cfg.data.servers).sort();
  if (names.length === 0) {
    checks.push({
      check: "servers",
      status: "ok",
      detail: "none configured: a local shed-server is started on demand",
    });
  }
  const sheds = new Map<string, string[]>();
  for (const name of names) {
    const entry = cfg.data.servers[name] as ServerEntry;
    const result = await serverChecks(cfg, name, entry);
    checks.push(...result.checks);
    if (result.sheds) sheds.set(name, result.sheds);
  }
  checks.push(sshBlockCheck(cfg, sheds));
  return report(checks);
}

async function serverChecks(
  cfg: ClientConfig,
  name: string,
  entry: ServerEntry,
): Promise<{ checks: DoctorCheck[]; sheds?: string[] }> {
  const at = `${entry.host}:${entry.http_port}`;
  const label = (what: string) => `server ${name}: ${what}`;
  if (isOwnLocalServer(cfg, name, entry) && !(await localServerUp(entry))) {
    return {
      checks: [
        {
          check: label("reachable"),
          status: "ok",
          detail: `the CLI's own local server is not running; the next command starts it`,
        },
      ],
    };
  }
  const api = new ApiClient(name, entry);
  let info: ServerInfo;
  try {
    info = await api.json<ServerInfo>("GET", "/api/info");
  } catch (err) {
    const e = toShedError(err);
    const check = e.code === "SERVER_IDENTITY_CHANGED" ? label("TLS certificate") : label("reachable");
    return { checks: [{ check, status: "fail", detail: e.message, ...(e.hint ? { hint: e.hint } : {}) }] };
  }
  const checks: DoctorCheck[] = [
    { check: label("reachable"), status: "ok", detail: `shed-server ${info.version} at ${at}` },
    certificateCheck(label("TLS certificate"), entry),
  ];
  checks.push(await hostKeyCheck(label("SSH host key"), entry, info));
  if (!entry.token) {
    checks.push({
      check: label("token"),
      status: "fail",
      detail: "the client config holds no API token for it",
      hint: `on the server: shed-server token | shed server add ${entry.host} --port ${entry.http_port} --name ${name} --token-file -`,
    });
    return { checks };
  }
  try {
    const list = await api.json<ShedListResponse>("GET", "/api/sheds");
    const sheds = list.sheds.map((s) => s.name);
    checks.push({ check: label("token"), status: "ok", detail: `accepted (${sheds.length} sheds)` });
    return { checks, sheds };
  } catch (err) {
    const e = toShedError(err);
    const wrongToken = e instanceof ShedError && e.code === "UNAUTHORIZED";
    checks.push({
      check: label("token"),
      status: "fail",
      detail: wrongToken ? "the server refused the API token in the client config" : e.message,
      hint: wrongToken
        ? `the server's token changed or the entry holds another server's: on the server, shed-server token | shed server add ${entry.host} --port ${entry.http_port} --name ${name} --token-file -`
        : (e.hint ?? "see the message"),
    });
    return { checks };
  }
}

/** The connection itself proved a pinned certificate (ApiClient refuses another); plain HTTP is judged by where it goes. */
function certificateCheck(check: string, entry: ServerEntry): DoctorCheck {
  if (entry.tls_fingerprint) return { check, status: "ok", detail: `matches the pinned ${entry.tls_fingerprint}` };
  if (isLoopbackHost(entry.host)) return { check, status: "ok", detail: "none: plain HTTP on loopback" };
  return {
    check,
    status: "warn",
    detail: `none: plain HTTP to ${entry.host}, the token crosses the network readable`,
    hint: "make the server speak TLS (remove insecure_http from its config), then add it again",
  };
}

async function hostKeyCheck(check: string, entry: ServerEntry, info: ServerInfo): Promise<DoctorCheck> {
  const changed = (seen: string, how: string): DoctorCheck => ({
    check,
    status: "fail",
    detail: `${how} ${seen.slice(0, 60)}..., not the key pinned when the server was added (${entry.host_key.slice(0, 60)}...); ssh will refuse to connect`,
    hint: `if the server's host key was replaced on purpose (its data_dir/ssh_host_ed25519_key), add it again: shed-server token | shed server add ${entry.host} --port ${entry.http_port} --token-file -; otherwise someone may be intercepting the connection`,
  });
  const scanned = await scanHostKey(entry.host, entry.ssh_port, entry.host_key);
  if (scanned === undefined) {
    // No ssh-keyscan: the server's own word (over the pinned API) is what is left.
    if (info.ssh_host_key !== entry.host_key) return changed(info.ssh_host_key, "the server reports");
    return { check, status: "ok", detail: "the server reports the pinned key (ssh-keyscan is not installed)" };
  }
  if (scanned.key === undefined) {
    return {
      check,
      status: "fail",
      detail: `nothing answered on the SSH port ${entry.host}:${entry.ssh_port}`,
      hint: "the server's ssh_port may have changed: `shed server add` again picks it up",
    };
  }
  if (scanned.key !== entry.host_key) return changed(scanned.key, `${entry.host}:${entry.ssh_port} presents`);
  return { check, status: "ok", detail: `${entry.host}:${entry.ssh_port} presents the pinned key` };
}
