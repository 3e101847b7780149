import type { DoctorCheck } from "../../core/doctor-report.js";
import { toShedError } from "../../core/errors.js";
import type { ClientConfig } from "../client-config.js";
import { findBlock, type HostEntry, hostEntry, parseBlock } from "../ssh-config-block.js";
import { asBytes, readUserSshConfig } from "../user-ssh-config.js";

/**
 * Whether the block `shed ssh-config --install` manages in ~/.ssh/config is what it would write
 * now: each entry for a shed that still exists, with the server's current address, port and the
 * client's key files. `sheds` holds each reachable server's shed names; a server missing from it
 * could not be asked, and its entries are left unjudged.
 */
export function sshBlockCheck(cfg: ClientConfig, sheds: Map<string, string[]>): DoctorCheck {
  const check = "ssh-config block";
  let file: ReturnType<typeof readUserSshConfig>;
  let installed: HostEntry[];
  try {
    file = readUserSshConfig();
    const region = findBlock(file.bytes, file.file);
    if (!region)
      return { check, status: "ok", detail: `not installed in ${file.file} (shed ssh-config --install adds it)` };
    installed = parseBlock(file.bytes, region);
  } catch (err) {
    const e = toShedError(err);
    return { check, status: "fail", detail: e.message, ...(e.hint ? { hint: e.hint } : {}) };
  }
  const files = { keyFile: cfg.keyFile, knownHostsFile: cfg.knownHostsFile };
  const stale: string[] = [];
  const servers = new Set<string>();
  for (const e of installed) {
    const entry = Object.hasOwn(cfg.data.servers, e.server) ? cfg.data.servers[e.server] : undefined;
    if (!entry) {
      stale.push(`${e.host} (server ${e.server} is not configured)`);
      continue;
    }
    const names = sheds.get(e.server);
    if (!names) continue;
    if (!names.includes(e.shed)) {
      stale.push(`${e.host} (no shed ${e.shed} on ${e.server})`);
      servers.add(e.server);
      continue;
    }
    let want: string;
    try {
      want = asBytes(hostEntry(e.shed, { name: e.server, entry }, files).text);
    } catch {
      want = "";
    }
    if (want !== e.text.replaceAll("\r\n", "\n")) {
      stale.push(`${e.host} (differs from what ${e.server} needs now)`);
      servers.add(e.server);
    }
  }
  const hint = [...servers].map((s) => `shed ssh-config --install --server ${s}`).join("; ");
  if (stale.length > 0) {
    return {
      check,
      status: "fail",
      detail: `${file.file} is out of date: ${stale.join(", ")}`,
      hint: hint || "shed ssh-config --uninstall removes the block; --install writes it again",
    };
  }
  const missing = [...sheds].flatMap(([server, names]) =>
    names.filter((n) => !installed.some((e) => e.server === server && e.shed === n)).map((n) => `${n} (${server})`),
  );
  if (missing.length > 0) {
    return {
      check,
      status: "warn",
      detail: `${file.file}: ${installed.length} entries are current; not installed: ${missing.join(", ")}`,
      hint: "shed ssh-config --install adds every shed of a server",
    };
  }
  return { check, status: "ok", detail: `${file.file}: ${installed.length} entries, all current` };
}
