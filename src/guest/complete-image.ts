import { ShedError } from "../core/errors.js";
import {
  COMPLETE_IMAGE_SCRIPT,
  COMPLETION_LOG,
  EXEC_DEADLINE_MS,
  INSTALL_SCRIPT,
  INSTALL_TIMEOUT_S,
} from "./complete-image-script.js";
import { describeCompletion, type ImageCompletion, parseCompletion } from "./complete-image-summary.js";
import type { GuestExec } from "./exec.js";
import { DEFAULT_GUEST_UID } from "./shed-user.js";

/**
 * Completes an image that lacks what Shed needs (issue 13: a devcontainer.json
 * `image`/`build` or `--image` naming e.g. a plain Debian image, or one whose
 * uid 1000 is `vscode`). Runs once, at create, as root, in the running guest:
 * what it adds lives in the guest's own disk (a container's writable
 * layer), so stop and start keep it and no derived image is made.
 *
 * - sudo, bash and git, when missing, come from the image's package manager
 *   (apt-get, apk, dnf, microdnf, yum), bounded by INSTALL_TIMEOUT_S; a failed
 *   install is a warning, except that Shed's scripts cannot do without bash.
 * - group and user `shed` (home /home/shed, bash when there is one): id 1000
 *   when free, else the next free id; never another account's uid. useradd,
 *   else busybox adduser, else lines appended to /etc/passwd, group, shadow.
 * - passwordless sudo for shed; Shed's log and state folders; /workspace when
 *   it is an empty volume not yet shed's (root's, when the image had
 *   no /workspace), never a --local-dir.
 * The home is re-owned without walking through mount points: credentials
 * bind-mounted below it keep their owner on the host.
 */

/**
 * Adds what the guest's image lacks (see the top of this file) and says what
 * it did. Throws BACKEND_ERROR when the guest still cannot run Shed: no user
 * shed could be added, or bash is missing (Shed's scripts need it).
 */
export interface CompletionOptions {
  /** /workspace is the shed's own volume, not a --local-dir (which is never re-owned). */
  workspaceIsVolume: boolean;
  /** Some credential is mounted live with the server's uid 1000 (a uid other than 1000 for shed matters then). */
  liveCredentials: boolean;
  /** What the completion is doing, line by line, as it goes (the package manager's run can take minutes). */
  onOutput?: (text: string) => void;
}

export async function completeImage(guest: GuestExec, opts: CompletionOptions): Promise<ImageCompletion> {
  const run = await runBounded(guest, opts.onOutput, [
    "sh",
    "-c",
    COMPLETE_IMAGE_SCRIPT,
    "shed-complete-image",
    opts.workspaceIsVolume ? "volume" : "bind",
    String(INSTALL_TIMEOUT_S),
    String(DEFAULT_GUEST_UID),
    COMPLETION_LOG,
    INSTALL_SCRIPT,
  ]);
  const hint =
    "use an image that has bash and a user named shed, or build one FROM shed-base:latest (`npm run build-image` makes shed-base)";
  if (run.exitCode !== 0) {
    const detail = run.stderr.trim().split("\n").slice(-3).join("; ").slice(0, 400);
    throw new ShedError(
      "BACKEND_ERROR",
      `the image has no user named shed, and adding one failed: ${detail || `exit ${run.exitCode}`}`,
      { hint },
    );
  }
  const summary = parseCompletion(run.stdout);
  const described = describeCompletion(summary, opts.liveCredentials);
  if (!summary.user) {
    throw new ShedError("BACKEND_ERROR", "the image has no user named shed, and Shed could not add one", { hint });
  }
  if (summary.missing.includes("bash")) {
    const why = described.warnings.at(-1)?.message ?? "the image lacks bash";
    throw new ShedError("BACKEND_ERROR", `${why}; Shed's scripts need bash`, { hint });
  }
  return described;
}

/** Runs the script to its end, or gives up at EXEC_DEADLINE_MS (killing it), so create never hangs on a guest. */
async function runBounded(
  guest: GuestExec,
  onOutput: ((text: string) => void) | undefined,
  argv: string[],
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const proc = await guest.exec({ argv, user: "root" });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  // Lines other than the summary's `@shed` ones say what is happening: shown as they come.
  let partial = "";
  proc.stdout.on("data", (c: Buffer) => {
    out.push(c);
    if (!onOutput) return;
    const lines = (partial + c.toString("utf8")).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line !== "" && !line.startsWith("@shed\t")) onOutput(`${line}\n`);
  });
  proc.stderr.on("data", (c: Buffer) => err.push(c));
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => resolve("expired"), EXEC_DEADLINE_MS);
  });
  try {
    const ended = await Promise.race([proc.exited, expired]);
    if (ended === "expired") {
      await proc.signal("SIGKILL").catch(() => {});
      throw new ShedError(
        "BACKEND_ERROR",
        `adding what the image lacks (user shed, sudo, bash, git) did not finish within ${EXEC_DEADLINE_MS / 1000}s`,
        { hint: `see ${COMPLETION_LOG} in the shed, or use an image built FROM shed-base:latest` },
      );
    }
    return {
      exitCode: ended,
      stdout: Buffer.concat(out).toString("utf8"),
      stderr: Buffer.concat(err).toString("utf8"),
    };
  } finally {
    clearTimeout(timer);
  }
}
