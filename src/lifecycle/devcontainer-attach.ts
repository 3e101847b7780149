import type { DevcontainerPlan } from "../config/devcontainer/map.js";
import { encodeStage, STAGE_RUNNER } from "../guest/devcontainer-stage.js";
import type { GuestExec } from "../guest/exec.js";

/**
 * devcontainer.json's postAttachCommand, run when a user attaches: a console
 * (an SSH shell session) or `shed attach` (tmux with a terminal). It runs in
 * the session's own environment, as a login shell would, before the shell or
 * tmux starts, with its output shown in the session; a failure is said there
 * and the session goes on (as in the reference tool, attaching is not refused).
 */
export async function runAttachStage(
  plan: DevcontainerPlan | undefined,
  guest: GuestExec,
  user: string,
  env: Record<string, string>,
  write: (text: string) => void,
): Promise<void> {
  if (!plan?.attach.length) return;
  const proc = await guest.exec({
    argv: ["bash", "--login", "-c", STAGE_RUNNER, "shed-attach", encodeStage(plan.attach)],
    cwd: "/workspace",
    env,
    user,
  });
  proc.stdout.on("data", (b: Buffer) => write(b.toString("utf8")));
  proc.stderr.on("data", (b: Buffer) => write(b.toString("utf8")));
  const code = await proc.exited.catch(() => -1);
  if (code !== 0) write(`shed: ${plan.file}: postAttachCommand failed (exit ${code}); the session goes on\n`);
}

/** Whether an SSH command is `shed attach`'s: tmux new-session with a terminal. */
export function isAttachCommand(argv: readonly string[], pty: boolean): boolean {
  if (!pty) return false;
  const at = argv.indexOf("tmux");
  return at >= 0 && argv[at + 1] === "new-session";
}
