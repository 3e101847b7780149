import { ShedError } from "../core/errors.js";

/**
 * The systemd unit `shed-server install` writes (systemd.service(5), systemd.kill(5)). Pure text,
 * so a test can read it and `systemd-analyze verify` can check it without a running systemd.
 */
export const UNIT_NAME = "shed-server.service";

export interface ServiceUnitOptions {
  /** The node binary, absolute: a unit's environment has no nvm or user PATH to find `node` on. */
  node: string;
  /** This shed-server's own script (dist/shed-server.mjs), absolute. */
  script: string;
  /** The server config, absolute; undefined: defaults (data_dir then follows the user's $HOME). */
  config: string | undefined;
  /** The user the server runs as: the one who installed it, so data_dir and Docker access stay theirs. */
  user: string;
  /** PATH as it was at install, where docker, qemu, pasta and firecracker were found. */
  path: string;
}

/**
 * One word of an Exec line or an Environment assignment, quoted so systemd reads it back as
 * exactly this string: double quotes with C escapes for `\` and `"`, `%%` for a literal `%`
 * (specifiers expand even inside quotes) and, in Exec lines, `$$` for a literal `$`.
 */
export function systemdWord(value: string, opts: { exec: boolean }): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new ShedError("INVALID_REQUEST", `${JSON.stringify(value)} cannot be written into a systemd unit`, {
      hint: "a line break or control character in a path cannot be written in a unit file: move the file to a plain path",
    });
  }
  let text = value.replaceAll("%", "%%");
  if (opts.exec) text = text.replaceAll("$", "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export function renderServiceUnit(o: ServiceUnitOptions): string {
  const argv = [o.node, o.script, "serve", ...(o.config === undefined ? [] : ["--config", o.config])];
  return [
    "# Written by `shed-server install`; `shed-server uninstall` removes it.",
    "[Unit]",
    "Description=Shed server: runs sheds on this machine (HTTP API and SSH)",
    // The Docker engine first when there is one (an ordering only: a server without Docker still starts).
    "After=network-online.target docker.service",
    "Wants=network-online.target",
    "",
    "[Service]",
    // exec: systemd reports the start failed when the binary cannot be executed, not later.
    "Type=exec",
    `User=${systemdWord(o.user, { exec: false })}`,
    `Environment=${systemdWord(`PATH=${o.path}`, { exec: false })}`,
    `ExecStart=${argv.map((a) => systemdWord(a, { exec: true })).join(" ")}`,
    // A crash or a failed start (the engine not up yet) is retried; a clean stop is not.
    "Restart=on-failure",
    "RestartSec=5s",
    // KillMode=process: a stop sends SIGTERM to shed-server only. The server closes its API and
    // SSH and exits; sheds keep running. A VM shed's QEMU (and its pasta and virtiofsd helpers)
    // is spawned in a session of its own (backends/vm/process.ts), but it is still in this
    // unit's cgroup, which the default (control-group) would kill whole; the next server adopts
    // the running QEMU by pid and start time. Docker containers belong to dockerd, not to us.
    "KillMode=process",
    "KillSignal=SIGTERM",
    // The server's close waits for open SSH sessions and running operations.
    "TimeoutStopSec=60s",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}
