import { execFile } from "node:child_process";
import { ShedError } from "../../core/errors.js";

/**
 * Runs the host's network tools (ip, iptables, sysctl) for the Firecracker backend: argv arrays,
 * never a shell. `netns` runs the command inside that network namespace through
 * `ip netns exec`: the tests' way of doing all of this without touching the host's own network.
 * Production passes none.
 */
export interface NetCommandOptions {
  netns?: string;
}

export interface NetCommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command as it will run: inside the namespace when one is given. */
export function inNetns(argv: readonly string[], netns: string | undefined): string[] {
  return netns === undefined ? [...argv] : ["ip", "netns", "exec", netns, ...argv];
}

const PACKAGE_OF: Record<string, string> = { ip: "iproute2", iptables: "iptables", sysctl: "procps" };

/** Runs the command; a non-zero exit is a result, not an error (callers tell "absent" from failure). */
export function runNetCommand(argv: readonly string[], opts: NetCommandOptions = {}): Promise<NetCommandResult> {
  const full = inNetns(argv, opts.netns);
  const [program, ...args] = full as [string, ...string[]];
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
        reject(
          new ShedError("BACKEND_ERROR", `the ${program} command was not found on this host`, {
            hint: `install ${PACKAGE_OF[program] ?? program} (it must be on shed-server's PATH)`,
          }),
        );
        return;
      }
      if (err && typeof (err as { code?: unknown }).code !== "number") {
        // Killed by the timeout or a signal: no exit code to interpret.
        reject(new ShedError("BACKEND_ERROR", `${full.join(" ")} did not finish: ${err.message}`));
        return;
      }
      resolve({ code: err ? ((err as { code: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Runs the command and fails with its stderr unless it exits 0. */
export async function mustRunNetCommand(
  argv: readonly string[],
  opts: NetCommandOptions & { what: string; hint?: string },
): Promise<string> {
  const r = await runNetCommand(argv, opts);
  if (r.code !== 0) {
    throw new ShedError(
      "BACKEND_ERROR",
      `could not ${opts.what}: \`${inNetns(argv, opts.netns).join(" ")}\` exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`,
      opts.hint === undefined ? {} : { hint: opts.hint },
    );
  }
  return r.stdout;
}

/** What `ip -j -d link show` says about one interface (the fields Shed looks at). */
export interface LinkInfo {
  ifname: string;
  flags: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string } };
}

/** The interface, or undefined when there is none by that name. */
export async function linkInfo(name: string, opts: NetCommandOptions = {}): Promise<LinkInfo | undefined> {
  const r = await runNetCommand(["ip", "-j", "-d", "link", "show", "dev", name], opts);
  if (r.code !== 0) {
    if (/does not exist|Cannot find device/.test(r.stderr)) return undefined;
    throw new ShedError("BACKEND_ERROR", `could not look at network interface ${name}: ${r.stderr.trim()}`);
  }
  const links = JSON.parse(r.stdout) as LinkInfo[];
  return links[0];
}

/** The kind of an interface in words, for errors ("a veth", "a TAP device"). */
export function describeLink(link: LinkInfo): string {
  const kind = link.linkinfo?.info_kind;
  if (kind === "tun") return link.linkinfo?.info_data?.type === "tap" ? "a TAP device" : "a TUN device";
  return kind ? `a ${kind} interface` : "a physical or loopback interface";
}
