import type { Command } from "@commander-js/extra-typings";
import { ShedError, toShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import type { Shed } from "../../core/types.js";
import { STABLE_AGENT_LINK } from "../../protocol/agent-link.js";
import type { ShedListResponse } from "../../protocol/api-types.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { safeText } from "../safe-text.js";
import { captureSsh, forwardsAgent, runSsh } from "../ssh-run.js";
import { table } from "../table.js";
import {
  attachArgv,
  DEFAULT_SESSION,
  freshSessionName,
  hasSessionArgv,
  killSessionArgv,
  listSessionsArgv,
  parseSessions,
  sendKeysArgv,
  type TmuxSession,
  typedCommand,
  validateSessionName,
} from "../tmux.js";
import { sshConfigCommand } from "./ssh-config.js";

/** ssh-config, attach, sessions: connecting to sheds from OpenSSH, IDEs and tmux. */
export function registerConnectCommands(program: Command<[], GlobalOptions>): void {
  program
    .command("ssh-config [name]")
    .description(
      "print OpenSSH `Host shed-NAME` entries (for `ssh shed-NAME` and IDE Remote-SSH) for one shed or every shed on the server; --install puts them in ~/.ssh/config",
    )
    .option("--install", "write the entries into a managed block of ~/.ssh/config (other lines are kept as they are)")
    .option("--uninstall", "remove the managed block (or, with NAME, only that shed's entry) from ~/.ssh/config")
    .option("--dry-run", "with --install or --uninstall: print the file that would be written and change nothing")
    .action(async (name, opts) => sshConfigCommand(new CliContext(program.opts()), name, opts));

  program
    .command("attach <name>")
    .description(
      "attach to a tmux session in the shed (created in /workspace if needed); it keeps running after you detach",
    )
    .option("-S, --session <session>", "session name", DEFAULT_SESSION)
    .option("--new", "create a new session with a fresh name (SESSION, SESSION-2, ...) instead of attaching")
    .option("-A, --forward-agent", "forward your SSH agent ($SSH_AUTH_SOCK) into the shed, as ssh -A")
    .option("--no-forward-agent", "do not forward it, whatever the server entry says")
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      let session = validateSessionName(opts.session);
      if (!process.stdin.isTTY || !process.stdout.isTTY) {
        throw new ShedError("INVALID_REQUEST", "shed attach needs a terminal", {
          hint: `run it from an interactive terminal; to run a command in a session use \`shed exec ${name} -S ${session} -- CMD\``,
        });
      }
      if (opts.new) {
        session = freshSessionName(
          session,
          (await listSessions(ctx, name)).map((s) => s.name),
        );
        process.stderr.write(`shed: new session ${session} in ${name} (reattach: shed attach ${name} -S ${session})\n`);
      }
      process.exitCode = await runSsh(ctx, name, {
        argv: attachArgv(
          session,
          opts.new === true,
          forwardsAgent(ctx, opts.forwardAgent) ? STABLE_AGENT_LINK : undefined,
        ),
        tty: true,
        forwardAgent: opts.forwardAgent,
      });
    });

  const sessions = program
    .command("sessions [name]")
    .description("list tmux sessions in a shed; without NAME (or with --all) in every running shed of the server")
    .option("--all", "every running shed of the server (the default without NAME)")
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      if (name !== undefined && opts.all) {
        throw new ShedError("INVALID_REQUEST", "give a shed NAME or --all, not both", {
          hint: "shed sessions NAME lists one shed; shed sessions --all lists every running shed",
        });
      }
      const { rows, errors } = name === undefined ? await sessionsOfAll(ctx) : await sessionsOfOne(ctx, name);
      for (const e of errors) process.stderr.write(`warning: shed ${e.shed}: ${safeText(e.error)}\n`);
      ctx.result({ sessions: rows, ...(errors.length ? { errors } : {}) }, () =>
        rows.length === 0
          ? `no tmux sessions; start one with \`shed attach ${name ?? "NAME"}\``
          : table(
              ["SHED", "SESSION", "WINDOWS", "CREATED", "ATTACHED"],
              rows.map((s) => [
                s.shed,
                s.name,
                String(s.windows),
                s.created.slice(0, 19).replace("T", " "),
                s.attached ? `yes (${s.clients})` : "no",
              ]),
            ),
      );
    });

  sessions
    .command("kill <name> <session>")
    .description("end a tmux session in a shed (and every process in it)")
    .action(async (name, session) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      validateSessionName(session);
      await requireRunning(ctx, name, session);
      const res = await captureSsh(ctx, name, killSessionArgv(session));
      if (res.code !== 0) await failTmux(ctx, name, session, "kill-session", res);
      ctx.result({ shed: name, killed: session }, () => `killed session ${session} in ${name}`);
    });
}

type SessionRow = TmuxSession & { shed: string };
type ShedFailure = { shed: string; error: string };

async function sessionsOfOne(ctx: CliContext, name: string): Promise<{ rows: SessionRow[]; errors: ShedFailure[] }> {
  validateShedName(name);
  const { api } = await ctx.server();
  const shed = await api.json<Shed>("GET", `/api/sheds/${name}`);
  // A stopped shed has no tmux server; connecting would start it just to say so.
  if (shed.status !== "running") return { rows: [], errors: [] };
  return { rows: (await listSessions(ctx, name)).map((s) => ({ shed: name, ...s })), errors: [] };
}

async function sessionsOfAll(ctx: CliContext): Promise<{ rows: SessionRow[]; errors: ShedFailure[] }> {
  const { api } = await ctx.server();
  const running = (await api.json<ShedListResponse>("GET", "/api/sheds")).sheds.filter((s) => s.status === "running");
  const rows: SessionRow[] = [];
  const errors: ShedFailure[] = [];
  await Promise.all(
    running.map(async (shed) => {
      try {
        rows.push(...(await listSessions(ctx, shed.name)).map((s) => ({ shed: shed.name, ...s })));
      } catch (err) {
        errors.push({ shed: shed.name, error: toShedError(err).message });
      }
    }),
  );
  rows.sort((a, b) => a.shed.localeCompare(b.shed) || a.name.localeCompare(b.name));
  errors.sort((a, b) => a.shed.localeCompare(b.shed));
  return { rows, errors };
}

/** The shed's tmux sessions; none when no tmux server runs there. */
async function listSessions(ctx: CliContext, name: string): Promise<TmuxSession[]> {
  const res = await captureSsh(ctx, name, listSessionsArgv());
  if (res.code !== 0) throw tmuxError(name, "list-sessions", res);
  return parseSessions(res.stdout);
}

/**
 * `shed exec NAME -S SESSION -- CMD...`: types the command into the session's
 * active pane and presses Enter (see typedCommand for why this is text).
 */
export async function execInSession(ctx: CliContext, name: string, session: string, argv: string[]): Promise<void> {
  validateShedName(name);
  validateSessionName(session);
  const text = typedCommand(argv);
  await requireRunning(ctx, name, session);
  const res = await captureSsh(ctx, name, sendKeysArgv(session, text));
  if (res.code !== 0) await failTmux(ctx, name, session, "send-keys", res);
  ctx.result({ shed: name, session, sent: text }, () => "");
}

function noSession(name: string, session: string, why: string): ShedError {
  return new ShedError("INVALID_REQUEST", `no tmux session ${JSON.stringify(session)} in shed ${name}${why}`, {
    hint: `list them with \`shed sessions ${name}\`; start one with \`shed attach ${name} -S ${session}\``,
    details: { shed: name, session },
  });
}

/** Sessions live only while the shed runs: a stopped shed has none (and is not started just to find that out). */
async function requireRunning(ctx: CliContext, name: string, session: string): Promise<void> {
  const { api } = await ctx.server();
  const shed = await api.json<Shed>("GET", `/api/sheds/${name}`);
  if (shed.status !== "running") throw noSession(name, session, ` (the shed is ${shed.status})`);
}

/** After a failed tmux command on a session: "no such session" when tmux agrees, else tmux's own error. */
async function failTmux(
  ctx: CliContext,
  name: string,
  session: string,
  what: string,
  res: { code: number; stderr: string },
): Promise<never> {
  if (res.code === 1) {
    // has-session exits 1 both for a missing session and for no tmux server at all: either way there is none.
    const has = await captureSsh(ctx, name, hasSessionArgv(session));
    if (has.code === 1) throw noSession(name, session, "");
  }
  throw tmuxError(name, what, res);
}

function tmuxError(name: string, what: string, res: { code: number; stderr: string }): ShedError {
  const detail = res.stderr.trim();
  if (res.code === 255) {
    return new ShedError("SERVER_UNREACHABLE", `ssh to shed ${name} failed${detail ? `: ${detail}` : ""}`, {
      hint: "check that the server runs (`shed server list`, `shed list`)",
    });
  }
  if (res.code === 126 || res.code === 127) {
    return new ShedError("NOT_SUPPORTED", `tmux is not installed in shed ${name}`, {
      hint: "install tmux in the shed's image, or from provision.yaml's install hook",
    });
  }
  return new ShedError(
    "BACKEND_ERROR",
    `tmux ${what} failed in shed ${name} (exit ${res.code})${detail ? `: ${detail}` : ""}`,
  );
}
