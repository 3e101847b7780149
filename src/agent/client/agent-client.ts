import type { Duplex, Readable } from "node:stream";
import { ShedError } from "../../core/errors.js";
import {
  encodeFrame,
  encodeJsonFrame,
  type Frame,
  FrameError,
  type FrameParser,
  FrameType,
  type FrameTypeCode,
  parseWindow,
} from "../../protocol/agent-frames.js";
import {
  AgentHealth,
  AgentMessage,
  DrainEnd,
  type ExecRequest,
  type OpenRequest,
  parseJsonPayload,
  TarEnd,
} from "../../protocol/agent-messages.js";
import { agentError } from "./agent-errors.js";
import { handshake } from "./client-handshake.js";
import { ClientStream, creditedReadable, streamDuplex } from "./client-stream.js";
import type { AgentDialer } from "./dialers.js";

export interface AgentClientOptions {
  dial: AgentDialer;
  /** The per-VM secret (the exact text of the agent's --secret-file, trimmed), when the agent requires one. */
  secret?: Buffer | string;
  /** Names the agent in errors, e.g. "the agent of shed foo". */
  where?: string;
  /** How long connect() waits for the agent's hello and ready (default 10 s). */
  handshakeTimeoutMs?: number;
}

export type AgentExecSpec = Omit<ExecRequest, "kind">;

/** A running exec as the protocol sees it; AgentGuestExec turns it into a GuestExec process. */
export interface AgentExec {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  /** Writes stdin (credit-limited: the callback runs once the bytes are on the wire). */
  write(buf: Buffer, done?: (err?: Error) => void): void;
  /** Closes stdin (EOF). */
  closeStdin(): void;
  resize(cols: number, rows: number): void;
  signal(signal: NodeJS.Signals): void;
  /** Exit code (128 + n when signal n ended it) once the process exited and all its output arrived. */
  exited: Promise<{ exitCode: number; signal?: string }>;
}

export type AgentMessageListener = (m: AgentMessage) => void;

/**
 * The host's connection to one shed-agent: one socket, many streams. Requests
 * made after the connection dropped fail with BACKEND_ERROR; make a new client
 * (the agent keeps nothing per connection, beyond the work it runs).
 */
export class AgentClient {
  private readonly streams = new Map<number, ClientStream>();
  private nextId = 1;
  private failure: ShedError | undefined;
  readonly closed: Promise<ShedError | undefined>;
  private resolveClosed!: (err: ShedError | undefined) => void;

  private constructor(
    private readonly socket: Duplex,
    /** The handshake's parser, which may already hold the start of the next frame. */
    private readonly parser: FrameParser,
    private readonly where: string,
    readonly protocolVersion: number,
    readonly agentVersion: string,
    readonly capabilities: readonly string[],
    leftover: Frame[],
  ) {
    this.closed = new Promise((r) => {
      this.resolveClosed = r;
    });
    socket.on("data", (chunk: Buffer) => this.onChunk(chunk));
    socket.on("error", (err) => this.shutdown(this.lost(err.message)));
    socket.on("close", () => this.shutdown(this.lost("the connection closed")));
    for (const f of leftover) this.onFrame(f);
  }

  /** Dials, exchanges hellos (and the secret's proof), and resolves once the agent is ready. */
  static async connect(opts: AgentClientOptions): Promise<AgentClient> {
    const h = await handshake(opts);
    return new AgentClient(
      h.socket,
      h.parser,
      h.where,
      h.version,
      h.hello.agentVersion,
      h.hello.capabilities,
      h.leftover,
    );
  }

  get isClosed(): boolean {
    return this.failure !== undefined;
  }

  async health(): Promise<AgentHealth> {
    const s = this.open({ kind: "health" });
    return parseEnd(AgentHealth, await s.ended, this.where, "health");
  }

  /** Stops the agent taking new work and waits up to timeoutMs for what runs; resolves with how many still ran. */
  async drain(timeoutMs = 5000): Promise<number> {
    const s = this.open({ kind: "drain", timeoutMs });
    return parseEnd(DrainEnd, await s.ended, this.where, "drain").stillRunning;
  }

  async exec(spec: AgentExecSpec): Promise<AgentExec> {
    const s = this.open({ kind: "exec", ...spec });
    const out = creditedReadable(s);
    const err = creditedReadable(s);
    s.onData = out.push;
    s.onStderr = err.push;
    const exited = s.ended.then(
      (v) => {
        out.end();
        err.end();
        const end = v as { exitCode?: unknown; signal?: unknown };
        if (typeof end?.exitCode !== "number") throw badReply(this.where, "exec");
        return { exitCode: end.exitCode, ...(typeof end.signal === "string" ? { signal: end.signal } : {}) };
      },
      (e: Error) => {
        out.end();
        err.end();
        throw e;
      },
    );
    exited.catch(() => {});
    const accepted = (await s.accepted) as { pid?: number } | undefined;
    return {
      pid: typeof accepted?.pid === "number" ? accepted.pid : 0,
      stdout: out.readable,
      stderr: err.readable,
      write: (buf, done) => s.write(buf, done),
      closeStdin: () => s.eof(),
      resize: (cols, rows) => s.control({ resize: { cols, rows } }),
      signal: (signal) => s.control({ signal }),
      exited,
    };
  }

  /** Extracts a tar stream under dir in the guest, owned by user (default shed). Refuses traversal and links out. */
  async putTar(
    opts: { dir: string; user?: string; maxBytes?: number; maxEntries?: number },
    tar: Readable,
  ): Promise<{ bytes: number; entries: number }> {
    const s = this.open({ kind: "put-tar", ...opts });
    await s.accepted;
    const duplex = streamDuplex(s);
    // The agent's refusal arrives as the stream's error: `ended` below reports it.
    duplex.on("error", () => {});
    duplex.resume();
    tar.on("error", () => s.cancel());
    tar.pipe(duplex);
    try {
      return parseEnd(TarEnd, await s.ended, this.where, "put-tar");
    } finally {
      tar.unpipe(duplex);
    }
  }

  /** Streams a guest path out as a tar archive (one top entry: its basename). */
  async getTar(opts: { path: string; maxBytes?: number }): Promise<Readable> {
    const s = this.open({ kind: "get-tar", ...opts });
    return acceptedDuplex(s);
  }

  /** A byte stream to 127.0.0.1:port inside the guest (SSH direct-tcpip, tunnels). */
  async openTcp(port: number): Promise<Duplex> {
    const s = this.open({ kind: "tcp", port });
    return acceptedDuplex(s);
  }

  /** A byte stream to a Unix socket inside the guest (SSH agent forwarding). */
  async relayUnix(path: string): Promise<Duplex> {
    const s = this.open({ kind: "unix", path });
    return acceptedDuplex(s);
  }

  /**
   * Subscribes to the agent's messages: credential-changed for each watched
   * guest path, and draining. Resolves once the agent watches; call the
   * returned function to unsubscribe.
   */
  async onMessage(listener: AgentMessageListener, watch: string[] = []): Promise<() => void> {
    const s = this.open({ kind: "subscribe", watch });
    s.onMessage = listener;
    await s.accepted;
    return () => s.cancel();
  }

  close(): void {
    this.shutdown(new ShedError("BACKEND_ERROR", `the connection to ${this.where} was closed by this host`));
    this.socket.destroy();
  }

  private open(req: OpenRequest): ClientStream {
    if (this.failure) throw this.failure;
    const id = this.nextId;
    this.nextId += 2;
    const s = new ClientStream(id, (type: FrameTypeCode, payload: Buffer) =>
      this.write(encodeFrame(type, id, payload)),
    );
    this.streams.set(id, s);
    this.write(encodeJsonFrame(FrameType.OPEN, id, req));
    return s;
  }

  private write(buf: Buffer): void {
    if (!this.failure && !this.socket.destroyed) this.socket.write(buf);
  }

  private onChunk(chunk: Buffer): void {
    if (this.failure) return;
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch (err) {
      this.protocolError((err as Error).message);
      return;
    }
    for (const f of frames) {
      if (this.failure) return;
      try {
        this.onFrame(f);
      } catch (err) {
        this.protocolError((err as Error).message);
      }
    }
  }

  private onFrame(f: Frame): void {
    if (f.stream === 0) {
      if (f.type === FrameType.ERROR) {
        this.shutdown(agentError(this.where, f.payload));
        this.socket.destroy();
      } else this.protocolError(`unexpected frame type ${f.type} on stream 0`);
      return;
    }
    const s = this.streams.get(f.stream);
    if (!s) return;
    switch (f.type) {
      case FrameType.ACCEPT:
        s.accept(JSON.parse(f.payload.toString("utf8")));
        return;
      case FrameType.DATA:
      case FrameType.STDERR: {
        s.receiver.received(f.payload.length);
        const to = f.type === FrameType.DATA ? s.onData : s.onStderr;
        if (to) to(f.payload);
        else s.receiver.consumed(f.payload.length);
        return;
      }
      case FrameType.EOF:
        s.onEof?.();
        return;
      case FrameType.WINDOW:
        s.sender.grant(parseWindow(f.payload));
        return;
      case FrameType.MESSAGE: {
        const m = parseJsonPayload(AgentMessage, f.payload);
        if (m) s.onMessage?.(m);
        return;
      }
      case FrameType.END:
        this.streams.delete(f.stream);
        s.end(JSON.parse(f.payload.toString("utf8")));
        return;
      case FrameType.ERROR:
        this.streams.delete(f.stream);
        s.fail(agentError(this.where, f.payload));
        return;
      default:
        throw new FrameError("BAD_FRAME", `unexpected frame type ${f.type} from the agent`);
    }
  }

  private protocolError(why: string): void {
    this.shutdown(new ShedError("BACKEND_ERROR", `${this.where} broke the agent protocol: ${why}`));
    this.socket.destroy();
  }

  private lost(why: string): ShedError {
    return new ShedError("BACKEND_ERROR", `lost the connection to ${this.where}: ${why}`, {
      hint: "the VM may have stopped; `shed start` starts it again",
    });
  }

  private shutdown(err: ShedError): void {
    if (this.failure) return;
    this.failure = err;
    for (const s of this.streams.values()) s.fail(err);
    this.streams.clear();
    this.resolveClosed(err);
  }
}

/**
 * The stream's Duplex, made before ACCEPT is awaited: the agent's first DATA
 * can arrive in the same socket chunk as its ACCEPT, and a stream with no data
 * callback yet drops what it gets (an await in between lost a small get-tar's
 * whole archive).
 */
async function acceptedDuplex(s: ClientStream): Promise<Duplex> {
  const duplex = streamDuplex(s);
  // A refusal also fails `ended`, which destroys the duplex with that error: nobody else listens yet.
  const quiet = () => {};
  duplex.on("error", quiet);
  await s.accepted;
  duplex.off("error", quiet);
  return duplex;
}

function badReply(where: string, what: string): ShedError {
  return new ShedError("BACKEND_ERROR", `${where} answered ${what} with an unreadable result`);
}

function parseEnd<T>(
  schema: { safeParse(v: unknown): { success: boolean; data?: T } },
  v: unknown,
  where: string,
  what: string,
): T {
  const r = schema.safeParse(v);
  if (!r.success) throw badReply(where, what);
  return r.data as T;
}
