import type { Server as NetServer } from "node:net";
import ssh2, { type AuthContext, type Connection, type ServerChannel, type Session } from "ssh2";
import { toShedError } from "../../core/errors.js";
import type { LifecycleEvent } from "../../core/events.js";
import { validateShedName } from "../../core/names.js";
import type { ExecProcess, ExecSpec, GuestExec } from "../../guest/exec.js";
import { userCommandArgv } from "../../guest/user-command.js";
import { isAttachCommand, runAttachStage } from "../../lifecycle/devcontainer-attach.js";
import type { ShedService } from "../../lifecycle/shed-service.js";
import { decodeArgvCommand, isArgvCommand } from "../../protocol/argv-command.js";
import type { AuthorizedKeys } from "../authorized-keys.js";
import { ConnectionAgent } from "./agent-forwarding.js";
import { FORWARD_CONNECTED, forwardArgv } from "./forward-script.js";
import { DEFAULT_SSH_LIMITS, type SshLimits, SshListener } from "./ssh-listener.js";

export interface SshServerDeps {
  service: ShedService;
  keys: AuthorizedKeys;
  hostKey: string;
  /** Login grace, keepalives and the cap on connections still authenticating; defaults are sshd's spirit. */
  limits?: Partial<SshLimits>;
}

/**
 * SSH into sheds: the user name is the shed name, public keys from
 * ssh_authorized_keys only. Shell, exec (with exit status), PTY and window
 * changes, env, signals, sftp, and direct-tcpip to the shed's loopback. A
 * session on a stopped shed starts it; a port forward never does.
 */
export interface SshServer {
  /** The TCP listener of the SSH port (it hands each connection to ssh2 under the limits). */
  server: NetServer;
  /** Ends every open connection (multiplexed clients keep theirs open for minutes). */
  closeConnections(): void;
}

export function createSshServer(deps: SshServerDeps): SshServer {
  const limits = { ...DEFAULT_SSH_LIMITS, ...deps.limits };
  const open = new Set<Connection>();
  const ssh = new ssh2.Server(
    {
      hostKeys: [deps.hostKey],
      // ssh2 sends keepalive@openssh.com once a client has been silent this long, and ends the
      // connection after this many unanswered in a row (any packet from the client counts as an answer).
      keepaliveInterval: limits.keepaliveIntervalMs,
      keepaliveCountMax: limits.keepaliveCountMax,
    },
    (client, info) => {
      open.add(client);
      client.on("close", () => open.delete(client));
      let shedName = "";
      client.on("authentication", (ctx) =>
        authenticate(ctx, deps.keys, (name) => {
          shedName = name;
        }),
      );
      client.on("ready", () => {
        listener.authenticated(info);
        onReady(client, shedName, deps.service);
      });
      client.on("error", (err: Error & { level?: string }) => {
        // A client that vanishes mid-handshake is not the server's problem; one that stopped
        // answering keepalives is cut off now, not after a close it will never acknowledge.
        if (err.level === "client-timeout") listener.drop(info);
      });
    },
  );
  const listener = new SshListener(ssh, limits);
  return {
    server: listener.server,
    closeConnections: () => {
      listener.dropUnauthenticated();
      for (const c of open) c.end();
    },
  };
}

function authenticate(ctx: AuthContext, keys: AuthorizedKeys, setName: (n: string) => void): void {
  if (ctx.method !== "publickey") {
    ctx.reject(["publickey"]);
    return;
  }
  const key = keys.allows(ctx.key.algo, ctx.key.data);
  if (!key) {
    ctx.reject(["publickey"]);
    return;
  }
  if (ctx.signature && ctx.blob && key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
    ctx.reject(["publickey"]);
    return;
  }
  setName(ctx.username);
  ctx.accept();
}

function onReady(client: Connection, name: string, service: ShedService): void {
  const agent = new ConnectionAgent(client);
  client.on("session", (accept) => {
    const session = accept();
    handleSession(session, name, service, agent);
  });
  client.on("tcpip", (accept, reject, info) => {
    const local = ["127.0.0.1", "localhost", "::1"].includes(info.destIP);
    if (!local || info.destPort < 1 || info.destPort > 65535) {
      reject();
      return;
    }
    void forward(service, name, info.destPort).then((res) => {
      if ("refused" in res) {
        rejectWithReason(reject, res.refused);
        return;
      }
      pipeChannel(accept(), res.proc, false);
    });
  });
}

/**
 * Opens the guest side of a forward first and accepts the channel only once
 * it is connected, so a closed port is refused as sshd would ("connect failed").
 * A stopped shed is not started: only a session (console, exec, ssh) starts
 * one, so a background tunnel never brings back a shed its user stopped. The
 * channel type is the client's to choose, but it only picks between these two
 * for the shed it authenticated as, so this grants no one anything new.
 */
async function forward(
  service: ShedService,
  name: string,
  port: number,
): Promise<{ proc: ExecProcess } | { refused: string }> {
  let guest: GuestExec;
  try {
    guest = await service.runningGuest(validateShedName(name));
  } catch (err) {
    const e = toShedError(err);
    return { refused: `shed-server: ${e.message}${e.hint ? `; ${e.hint}` : ""}` };
  }
  try {
    const proc = await guest.exec({ argv: forwardArgv(port), stdin: true });
    const connected = await new Promise<boolean>((resolve) => {
      proc.stderr.once("data", (chunk: Buffer) => resolve(chunk.toString().startsWith(FORWARD_CONNECTED)));
      void proc.exited.then(
        () => resolve(false),
        () => resolve(false),
      );
    });
    if (!connected) {
      proc.stdin?.end();
      return { refused: "" };
    }
    return { proc };
  } catch {
    return { refused: "" };
  }
}

/**
 * Refuses a channel open with a description, which OpenSSH prints ("open
 * failed: connect failed: ..."). ssh2's reject() takes none; this project's
 * patch of ssh2 (patches/) gives it one.
 */
function rejectWithReason(reject: () => void, reason: string): void {
  (reject as (description?: string) => void)(reason);
}

interface SessionState {
  env: Record<string, string>;
  /** The client asked for agent forwarding on this session (ssh -A). */
  agent?: ConnectionAgent;
  pty?: { cols: number; rows: number; term: string };
  proc?: ExecProcess;
}

function handleSession(session: Session, name: string, service: ShedService, agent: ConnectionAgent): void {
  const state: SessionState = { env: {} };

  session.on("auth-agent", (accept) => {
    state.agent = agent;
    accept?.();
  });
  session.on("pty", (accept, _reject, info) => {
    state.pty = { cols: info.cols || 80, rows: info.rows || 24, term: info.term || "xterm" };
    accept?.();
  });
  session.on("env", (accept, _reject, info) => {
    state.env[info.key] = info.val;
    accept?.();
  });
  session.on("window-change", (accept, _reject, info) => {
    if (state.pty) state.pty = { ...state.pty, cols: info.cols, rows: info.rows };
    void state.proc?.resize(info.cols, info.rows);
    accept?.();
  });
  session.on("signal", (accept, _reject, info) => {
    void state.proc?.signal(`SIG${info.name}` as NodeJS.Signals);
    accept?.();
  });
  session.on("shell", (accept) => {
    const channel = accept();
    void run(channel, state, name, service, ["bash", "--login"], true);
  });
  session.on("exec", (accept, _reject, info) => {
    const channel = accept();
    if (isArgvCommand(info.command)) {
      const argv = decodeArgvCommand(info.command);
      if (!argv) {
        failChannel(channel, "shed-server: the shed-exec command is malformed", 2);
        return;
      }
      // Through a fixed wrapper: a command that cannot run fails as in a shell (127, "not found"), on every backend.
      void run(channel, state, name, service, userCommandArgv(argv), isAttachCommand(argv, state.pty !== undefined));
      return;
    }
    // A plain `ssh host command`: like sshd, the user's shell interprets it (a login shell, so PATH is set up).
    void run(channel, state, name, service, ["bash", "--login", "-c", info.command]);
  });
  session.on("subsystem", (accept, reject, info) => {
    if (info.name !== "sftp") {
      reject?.();
      return;
    }
    const channel = accept();
    void run(channel, state, name, service, ["/usr/lib/openssh/sftp-server"]);
  });
}

async function run(
  channel: ServerChannel,
  state: SessionState,
  name: string,
  service: ShedService,
  argv: string[],
  attach = false,
): Promise<void> {
  let guest: GuestExec;
  let env: Record<string, string>;
  let user: string;
  try {
    const ensured = await service.ensureRunning(validateShedName(name), (ev) => reportStart(channel, name, ev));
    guest = ensured.guest;
    env = service.guestEnv(ensured.shed);
    // devcontainer.json's remoteUser when the image has it (issue 13), else shed.
    user = service.commandUser(name);
  } catch (err) {
    const e = toShedError(err);
    failChannel(channel, `shed-server: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ""}`, 255);
    return;
  }
  // SSH_AUTH_SOCK is the server's to set, only for a session that asked for agent forwarding.
  const { SSH_AUTH_SOCK: _ignored, ...clientEnv } = state.env;
  if (state.agent) {
    try {
      env = { ...env, SSH_AUTH_SOCK: await state.agent.socketPath(guest, user) };
    } catch (err) {
      // As sshd: the session goes on without the agent, and says why.
      channel.stderr.write(`shed-server: agent forwarding failed: ${toShedError(err).message}\r\n`);
    }
  }
  // devcontainer.json's postAttachCommand (issue 13), before the shell or tmux, its output in the session.
  if (attach) {
    const crlf = state.pty !== undefined;
    await runAttachStage(service.devcontainerPlan(name), guest, user, env, (t) =>
      channel.stderr.write(crlf ? t.replace(/\r?\n/g, "\r\n") : t),
    ).catch((err) => channel.stderr.write(`shed-server: postAttachCommand: ${toShedError(err).message}\r\n`));
  }
  const spec: ExecSpec = {
    argv,
    user,
    cwd: "/workspace",
    env: { ...clientEnv, ...(state.pty ? { TERM: state.pty.term } : {}), ...env },
    stdin: true,
    ...(state.pty ? { tty: { cols: state.pty.cols, rows: state.pty.rows } } : {}),
  };
  let proc: ExecProcess;
  try {
    proc = await guest.exec(spec);
  } catch (err) {
    failChannel(channel, `shed-server: ${toShedError(err).message}`, 255);
    return;
  }
  state.proc = proc;
  await pipeChannel(channel, proc, true);
}

/** Copies between an SSH channel and a guest process; sends the exit status when asked. */
async function pipeChannel(channel: ServerChannel, proc: ExecProcess, sendExit: boolean): Promise<void> {
  let closed = false;
  channel.on("close", () => {
    closed = true;
    // The client went away: hang up the process, as sshd does.
    void proc.signal("SIGHUP");
  });
  if (proc.stdin) {
    const stdin = proc.stdin;
    // The guest reads stdin at its own pace: while its pipe is full, the channel is paused, so ssh2
    // stops granting the client window and the client stops sending, instead of this process
    // buffering everything the client has (a `cat big | shed exec ...` would grow it without bound).
    channel.on("data", (chunk: Buffer) => {
      if (!stdin.write(chunk)) {
        channel.pause();
        stdin.once("drain", () => channel.resume());
      }
    });
    channel.on("end", () => stdin.end());
  }
  const outDone = new Promise<void>((resolve) => {
    proc.stdout.on("end", resolve);
    proc.stdout.pipe(channel, { end: false });
  });
  const errDone = new Promise<void>((resolve) => {
    proc.stderr.on("end", resolve);
    proc.stderr.pipe(channel.stderr, { end: false });
  });
  let code = 255;
  try {
    code = await proc.exited;
  } catch {
    code = 255;
  }
  await Promise.all([outDone, errDone]);
  if (closed) return;
  if (sendExit) channel.exit(code);
  channel.end();
}

function reportStart(channel: ServerChannel, name: string, ev: LifecycleEvent): void {
  if (ev.type === "step" && ev.step === "start") channel.stderr.write(`shed: starting ${name}...\r\n`);
  if (ev.type === "warning") channel.stderr.write(`shed: warning: ${ev.message}\r\n`);
}

function failChannel(channel: ServerChannel, message: string, code: number): void {
  channel.stderr.write(`${message}\n`);
  channel.exit(code);
  channel.end();
}
