import { ShedError } from "../core/errors.js";
import { WORKSPACE } from "../core/types.js";

/**
 * tmux inside a shed, as argv arrays for the OpenSSH client's shed-exec path.
 * Targets are always written `=NAME`: tmux otherwise resolves a target by
 * prefix or pattern, so `-t ma` would hit session `main`.
 */

export const DEFAULT_SESSION = "main";

export interface TmuxSession {
  name: string;
  windows: number;
  /** ISO 8601. */
  created: string;
  attached: boolean;
  /** How many clients are attached. */
  clients: number;
}

/** tmux refuses ':' and '.' in names and rewrites them; names are also typed by hand, so keep them plain. */
const SESSION_RE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;

export function validateSessionName(session: string): string {
  if (!SESSION_RE.test(session)) {
    throw new ShedError("INVALID_REQUEST", `invalid tmux session name ${JSON.stringify(session)}`, {
      hint: "session names use letters, digits, '_' and '-' (at most 64), e.g. main or build-2",
    });
  }
  return session;
}

/**
 * Attach to SESSION, creating it in /workspace if it does not exist (`-A`); `create` makes a new one only.
 * With `agentLink` (a forwarded agent), tmux runs with SSH_AUTH_SOCK at that stable link in the shed user's
 * home, which follows the latest forwarding connection, so shells in a session outlive this connection's socket.
 */
export function attachArgv(session: string, create = false, agentLink?: string): string[] {
  const tmux = ["tmux", "new-session", ...(create ? [] : ["-A"]), "-s", session, "-c", WORKSPACE];
  if (!agentLink) return tmux;
  const script = '[ -n "$SSH_AUTH_SOCK" ] && [ -S "$HOME/$1" ] && export SSH_AUTH_SOCK="$HOME/$1"; shift; exec "$@"';
  return ["sh", "-c", script, "shed-attach", agentLink, ...tmux];
}

// The name goes last: it is the only field that could contain a tab.
const LIST_FORMAT = "#{session_windows}\t#{session_created}\t#{session_attached}\t#{session_name}";

/**
 * Lists sessions. `start-server` first makes "no server" an empty list with
 * exit 0 (instead of an error only its message tells apart); `-f /dev/null`
 * keeps that short-lived server from running the user's tmux.conf. A server
 * already running is left as it is.
 */
export function listSessionsArgv(): string[] {
  return ["tmux", "-f", "/dev/null", "start-server", ";", "list-sessions", "-F", LIST_FORMAT];
}

export function parseSessions(stdout: string): TmuxSession[] {
  const sessions: TmuxSession[] = [];
  for (const line of stdout.split("\n")) {
    const [windows, created, attached, ...name] = line.split("\t");
    if (windows === undefined || created === undefined || attached === undefined || name.length === 0) continue;
    const clients = Number(attached);
    sessions.push({
      name: name.join("\t"),
      windows: Number(windows),
      created: new Date(Number(created) * 1000).toISOString(),
      attached: clients > 0,
      clients,
    });
  }
  return sessions.sort((a, b) => a.name.localeCompare(b.name));
}

/** Exit 0 when the session exists; 1 when it does not or no tmux server runs. */
export function hasSessionArgv(session: string): string[] {
  return ["tmux", "has-session", "-t", `=${session}`];
}

export function killSessionArgv(session: string): string[] {
  return ["tmux", "kill-session", "-t", `=${session}`];
}

/** `base` when free, else base-2, base-3, ... */
export function freshSessionName(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) {
    const candidate = `${base}-${i}`;
    if (!used.has(candidate)) return candidate;
  }
}

/**
 * The command line typed into the session's active pane, then Enter.
 *
 * This is the one place Shed builds shell text: send-keys types keystrokes
 * into an interactive shell that already runs in the pane, so there is no argv
 * channel to use; the shell parses what it receives. Each argument is put in
 * single quotes (with ' written as '\''), inside which POSIX shells, bash
 * history expansion included, treat every character literally, so the shell
 * rebuilds exactly the given argv. Control characters are refused: typed into
 * a terminal they are keystrokes (Ctrl-C, Tab completion, Enter), not text.
 */
export function typedCommand(argv: readonly string[]): string {
  if (argv.length === 0) {
    throw new ShedError("INVALID_REQUEST", "no command given", { hint: "shed exec NAME -S SESSION -- CMD [ARGS...]" });
  }
  for (const arg of argv) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused here
    if (/[\u0000-\u001f\u007f]/.test(arg)) {
      throw new ShedError(
        "INVALID_REQUEST",
        `argument ${JSON.stringify(arg)} contains a control character (newline, tab, escape, ...)`,
        {
          hint: "text sent into a session is typed into its terminal, where control characters act as keys; put the command in a script, or use `shed exec NAME -- CMD` without -S",
        },
      );
    }
  }
  return argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
}

/**
 * Types `text` literally into the session's active pane and presses Enter, in
 * one tmux invocation. tmux splits its argv into commands at any argument that
 * ends in ';'; typedCommand's text always ends in a quote, so it never does.
 */
export function sendKeysArgv(session: string, text: string): string[] {
  const target = `=${session}:`;
  return ["tmux", "send-keys", "-t", target, "-l", "--", text, ";", "send-keys", "-t", target, "Enter"];
}
