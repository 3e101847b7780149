import {
  applyHostNetwork,
  describeHostNetwork,
  planHostNetwork,
  type SetupAction,
} from "../backends/firecracker/host-network.js";
import { inNetns } from "../backends/firecracker/ip-command.js";
import { ShedError } from "../core/errors.js";

/**
 * `shed-server setup [--dry-run]`: makes the host network Firecracker sheds need (bridge, IPv4
 * forwarding, NAT; see backends/firecracker/host-network.ts). Idempotent: it looks first and
 * changes only what is missing, saying what it will change before it does. None of it survives a
 * host reboot, so it belongs in the host's boot (a systemd unit running it before shed-server).
 *
 * Failures are thrown as ShedError (the caller prints them and exits 1); the result is the exit code.
 */
export interface SetupCommandOptions {
  bridge: string;
  subnet: string;
  dryRun: boolean;
  /** Tests only: do everything inside this network namespace. */
  netns?: string;
  out: (line: string) => void;
  /** Tests only: the effective uid to judge (default: this process's). */
  euid?: number;
}

function show(action: SetupAction, netns: string | undefined): string[] {
  const argv = inNetns(action.argv, netns).map((a) => (/^[\w@%+=:,./!-]+$/.test(a) ? a : JSON.stringify(a)));
  return [`  - ${action.what}`, `      ${argv.join(" ")}`];
}

export async function runSetupCommand(o: SetupCommandOptions): Promise<number> {
  const euid = o.euid ?? process.geteuid?.();
  if (euid !== 0) {
    throw new ShedError(
      "INVALID_REQUEST",
      "shed-server setup must run as root: it reads and changes the host's bridge, IPv4 forwarding and iptables rules",
      { hint: `run it with sudo: sudo shed-server setup${o.dryRun ? " --dry-run" : ""} (with the same --config)` },
    );
  }
  const target = { bridge: o.bridge, subnet: o.subnet, ...(o.netns === undefined ? {} : { netns: o.netns }) };
  const actions = await planHostNetwork(target);
  if (actions.length === 0) {
    o.out(`nothing to change: ${describeHostNetwork(o)}`);
    return 0;
  }
  o.out("will change:");
  for (const a of actions) for (const line of show(a, o.netns)) o.out(line);
  if (o.dryRun) {
    o.out("dry run: nothing was changed");
    return 0;
  }
  await applyHostNetwork(actions, { ...(o.netns === undefined ? {} : { netns: o.netns }), log: o.out });
  // Look again: a rule another firewall removed at once, or a change the kernel ignored, shows here.
  const left = await planHostNetwork(target);
  if (left.length > 0) {
    throw new ShedError(
      "BACKEND_ERROR",
      `setup ran but these are still missing: ${left.map((a) => a.what).join("; ")}`,
      { hint: "another firewall manager (firewalld, ufw) may be rewriting the rules; check `iptables -S FORWARD`" },
    );
  }
  o.out(`set up: ${describeHostNetwork(o)}`);
  o.out("none of this survives a reboot: run `shed-server setup` at every boot, before shed-server serve");
  return 0;
}
