import { spawnSync } from "node:child_process";
import { existsSync, realpathSync, rmSync, statSync } from "node:fs";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import { loadServerConfig } from "../config/server-config.js";
import { writeFileAtomic } from "../core/atomic-file.js";
import { ShedError } from "../core/errors.js";
import { dataDirHolder } from "./data-dir-lock.js";
import { renderServiceUnit, UNIT_NAME } from "./service-unit.js";

/**
 * `shed-server install` and `uninstall`: the systemd unit (service-unit.ts), written where
 * systemd reads units and, when systemd runs this machine, enabled and started with systemctl.
 * Where it does not (a container, or systemd not PID 1), the unit is written and the commands
 * to run are printed instead. The unit dir, systemd's runtime dir and systemctl are options so
 * tests never touch the host's systemd.
 */
export interface ServiceOptions {
  /** Default /etc/systemd/system. */
  unitDir: string;
  /** systemd is running when this exists (sd_booted(3)); default /run/systemd/system. */
  systemdRunDir: string;
  /** Default `systemctl` on PATH. */
  systemctl: string;
  out: (line: string) => void;
}

export interface InstallOptions extends ServiceOptions {
  config: string | undefined;
  /** The user the unit runs as; default: who ran it (under sudo, the user sudo was run by). */
  user?: string;
}

function defaultUser(): string {
  const sudoUser = process.env.SUDO_USER;
  if (process.geteuid?.() === 0 && sudoUser) return sudoUser;
  return userInfo().username;
}

const LOGS = "journalctl -u shed-server -f";

export async function installService(o: InstallOptions): Promise<void> {
  const config = o.config === undefined ? undefined : resolve(o.config);
  // A config that does not load would make a unit that fails at every restart: refused now instead.
  const loaded = loadServerConfig(config);
  const unitFile = join(o.unitDir, UNIT_NAME);
  const user = o.user ?? defaultUser();
  const text = renderServiceUnit({
    node: process.execPath,
    script: realpathSync(process.argv[1] ?? ""),
    config,
    user,
    path: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
  });
  writeUnit(unitFile, text, o.unitDir);
  o.out(`wrote ${unitFile} (runs as ${user}${config ? `, with ${config}` : ", with the default config"})`);
  if (!existsSync(o.systemdRunDir)) {
    o.out(`systemd is not running on this machine (no ${o.systemdRunDir}): nothing was enabled. Where it runs:`);
    o.out(`  systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}`);
    o.out(`logs: ${LOGS}`);
    return;
  }
  systemctl(o, ["daemon-reload"]);
  // A server already on this data_dir (started by hand or by the CLI) would make the unit's
  // server fail at once and restart in a loop: the unit is enabled, and started once that one stops.
  const holder = await dataDirHolder(loaded.dataDir);
  if (holder) {
    systemctl(o, ["enable", UNIT_NAME]);
    const who = holder.pid ? `pid ${holder.pid}` : "another process";
    o.out(`enabled ${UNIT_NAME}, not started: a shed-server (${who}) already uses ${loaded.dataDir}`);
    o.out(`stop it${holder.pid ? ` (kill ${holder.pid})` : ""}, then: systemctl start ${UNIT_NAME}`);
  } else {
    systemctl(o, ["enable", "--now", UNIT_NAME]);
    o.out(`enabled and started ${UNIT_NAME}`);
  }
  o.out(`logs: ${LOGS}`);
}

export function uninstallService(o: ServiceOptions): void {
  const unitFile = join(o.unitDir, UNIT_NAME);
  if (!existsSync(unitFile)) {
    o.out(`${unitFile} does not exist: nothing to uninstall`);
    return;
  }
  const running = existsSync(o.systemdRunDir);
  // Stopping the unit stops the server only (KillMode=process): sheds keep running.
  if (running) systemctl(o, ["disable", "--now", UNIT_NAME]);
  try {
    rmSync(unitFile);
  } catch (err) {
    throw cannotWrite(unitFile, err);
  }
  if (running) systemctl(o, ["daemon-reload"]);
  o.out(`${running ? `stopped and disabled ${UNIT_NAME}; ` : ""}removed ${unitFile}`);
  if (running) o.out("sheds keep running; start a server again with `shed-server serve` or `shed-server install`");
}

function writeUnit(file: string, text: string, dir: string): void {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ShedError("INVALID_REQUEST", `the unit directory ${dir} does not exist`, {
      hint: "is this a systemd machine? --unit-dir names another directory",
    });
  }
  try {
    writeFileAtomic(file, text, 0o644);
  } catch (err) {
    throw cannotWrite(file, err);
  }
}

function cannotWrite(file: string, err: unknown): ShedError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new ShedError("INVALID_REQUEST", `cannot change ${file} (${code})`, {
    hint:
      code === "EACCES" || code === "EPERM"
        ? "unit files belong to root: run it with sudo (the unit then runs as the user who ran sudo; --user picks another)"
        : "check the unit directory",
    cause: err,
  });
}

function systemctl(o: ServiceOptions, args: string[]): void {
  const res = spawnSync(o.systemctl, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : (res.stderr.trim() || `exit ${res.status}`).slice(0, 2000);
    throw new ShedError("BACKEND_ERROR", `systemctl ${args.join(" ")} failed: ${why}`, {
      hint: `see \`systemctl status ${UNIT_NAME}\` and \`${LOGS}\``,
    });
  }
}
