import type { Duplex } from "node:stream";
import { newNonce, proofMatches } from "../protocol/agent-auth.js";
import { StreamReceiver, StreamSender } from "../protocol/agent-flow.js";
import {
  encodeFrame,
  encodeJsonFrame,
  type Frame,
  FrameError,
  FrameParser,
  FrameType,
  type FrameTypeCode,
  parseWindow,
  windowPayload,
} from "../protocol/agent-frames.js";
import {
  AGENT_CAPABILITIES,
  AGENT_PROTOCOL,
  AGENT_PROTOCOL_VERSIONS,
  type AgentErrorCode,
  type AgentHello,
  type AgentMessage,
  ExecControl,
  HostHello,
  OpenRequest,
  parseJsonPayload,
  pickVersion,
  WORK_KINDS,
} from "../protocol/agent-messages.js";
import type { AgentState } from "./agent-state.js";
import { startRequest } from "./requests.js";

/** Streams one connection may have open at once (each may hold one window of bytes in flight). */
export const MAX_STREAMS = 64;

/** What a request handler (exec, tar, relay...) uses to talk on its stream. */
export interface AgentStreamIO {
  readonly id: number;
  accept(value: unknown): void;
  /** Sends bytes within the stream's credit; `sent` runs once they are on the wire (resume the source then). */
  data(buf: Buffer, sent?: () => void): void;
  stderr(buf: Buffer, sent?: () => void): void;
  eof(): void;
  message(m: AgentMessage): void;
  /** The stream's last frame, after every byte queued before it. */
  end(value: unknown): void;
  /** Ends the stream with an error instead (queued bytes are dropped). */
  fail(code: AgentErrorCode, message: string): void;
  readonly ended: boolean;
}

/** What a request handler receives from the host. */
export interface StreamHandler {
  /** Host bytes; call consumed() once they were taken (credit flows back then). */
  onData?(buf: Buffer, consumed: () => void): void;
  onEof?(): void;
  onControl?(control: ExecControl): void;
  /** The host gave up, or the connection went: stop, and end the stream if it is still open. */
  onCancel(): void;
}

interface Stream {
  io: AgentStreamIO;
  sender: StreamSender;
  receiver: StreamReceiver;
  handler: StreamHandler | undefined;
  /** Frames from the host that arrived while the handler was still starting. */
  early: Frame[];
  /** The connection went: nothing more is sent on this stream. */
  abandon(): void;
}

export interface ConnectionOptions {
  state: AgentState;
  /** When set, the host must prove it (agent-auth.ts) before anything else. */
  secret: Buffer | undefined;
  log: (line: string) => void;
  /** Which listener accepted it, for log lines. */
  where: string;
}

/**
 * One host connection: the handshake, then frames routed to streams. Anything
 * that breaks the protocol closes this connection (an ERROR frame first), never
 * the agent.
 */
export function serveConnection(socket: Duplex, opts: ConnectionOptions): void {
  const parser = new FrameParser();
  const streams = new Map<number, Stream>();
  const nonce = opts.secret ? newNonce() : undefined;
  let phase: "hello" | "ready" | "closed" = "hello";
  let highestStream = 0;

  // A function, so TypeScript does not narrow `phase` across calls that may close the connection.
  const isClosed = () => phase === "closed";
  const write = (buf: Buffer) => {
    if (phase !== "closed" && !socket.destroyed) socket.write(buf);
  };

  const close = () => {
    if (phase === "closed") return;
    phase = "closed";
    for (const s of streams.values()) {
      // Marked ended first: a handler still starting sees it and stops its work as soon as it exists.
      s.abandon();
      s.handler?.onCancel();
    }
    streams.clear();
  };

  const fatal = (code: AgentErrorCode, message: string) => {
    if (phase === "closed") return;
    opts.log(`connection on ${opts.where} closed: ${code}: ${message}`);
    write(encodeJsonFrame(FrameType.ERROR, 0, { code, message }));
    close();
    socket.end();
    // A peer that never reads must not keep the socket (and its buffers) forever.
    setTimeout(() => socket.destroy(), 2000).unref();
  };

  socket.on("error", () => close());
  socket.on("close", () => close());
  socket.on("data", (chunk: Buffer) => {
    if (phase === "closed") return;
    let frames: Frame[];
    try {
      frames = parser.push(chunk);
    } catch (err) {
      const e = err as FrameError;
      fatal(e.code, e.message);
      return;
    }
    for (const f of frames) {
      if (isClosed()) return;
      try {
        onFrame(f);
      } catch (err) {
        if (err instanceof FrameError) fatal(err.code, err.message);
        else fatal("INTERNAL", `the agent failed on a ${frameName(f.type)} frame: ${(err as Error).message}`);
      }
    }
  });

  const hello: AgentHello = {
    protocol: AGENT_PROTOCOL,
    role: "agent",
    versions: [...AGENT_PROTOCOL_VERSIONS],
    capabilities: [...AGENT_CAPABILITIES],
    agentVersion: opts.state.agentVersion,
    ...(nonce ? { nonce } : {}),
  };
  write(encodeJsonFrame(FrameType.HELLO, 0, hello));

  function onFrame(f: Frame): void {
    if (phase === "hello") {
      if (f.type !== FrameType.HELLO || f.stream !== 0) {
        fatal(opts.secret ? "AUTH_REQUIRED" : "PROTOCOL", `expected the host's HELLO, got ${frameName(f.type)}`);
        return;
      }
      const h = parseJsonPayload(HostHello, f.payload);
      if (!h) {
        fatal("BAD_FRAME", "the host's HELLO is not a valid hello");
        return;
      }
      const version = pickVersion(AGENT_PROTOCOL_VERSIONS, h.versions);
      if (version === undefined) {
        fatal(
          "VERSION_MISMATCH",
          `the host speaks protocol versions ${h.versions.join(", ")}, this agent ${AGENT_PROTOCOL_VERSIONS.join(", ")}`,
        );
        return;
      }
      if (opts.secret && nonce) {
        if (h.proof === undefined) {
          fatal("AUTH_REQUIRED", "this agent requires proof of the VM's secret");
          return;
        }
        if (!proofMatches(opts.secret, nonce, h.proof)) {
          fatal("AUTH_FAILED", "wrong proof of the VM's secret");
          return;
        }
      }
      phase = "ready";
      write(encodeJsonFrame(FrameType.READY, 0, { version }));
      return;
    }
    if (f.stream === 0) {
      fatal("PROTOCOL", `${frameName(f.type)} is not valid on stream 0 after the handshake`);
      return;
    }
    if (f.type === FrameType.OPEN) {
      open(f);
      return;
    }
    const s = streams.get(f.stream);
    if (!s) {
      // Frames for a stream that already ended are normal (stdin racing the exit); for one never opened, not.
      if (f.stream <= highestStream) return;
      fatal("PROTOCOL", `${frameName(f.type)} for stream ${f.stream}, which was never opened`);
      return;
    }
    if (!s.handler) {
      s.early.push(f);
      if (s.early.length > 1024) {
        fatal("PROTOCOL", "too many frames before the request started");
        return;
      }
      return;
    }
    deliver(s, f);
  }

  function deliver(s: Stream, f: Frame): void {
    const h = s.handler as StreamHandler;
    switch (f.type) {
      case FrameType.DATA: {
        if (!h.onData) throw new FrameError("BAD_FRAME", `stream ${f.stream} takes no data`);
        s.receiver.received(f.payload.length);
        let done = false;
        h.onData(f.payload, () => {
          if (done) return;
          done = true;
          if (!s.io.ended) s.receiver.consumed(f.payload.length);
        });
        return;
      }
      case FrameType.EOF:
        h.onEof?.();
        return;
      case FrameType.WINDOW:
        s.sender.grant(parseWindow(f.payload));
        return;
      case FrameType.CONTROL: {
        const c = parseJsonPayload(ExecControl, f.payload);
        if (!c) throw new FrameError("BAD_FRAME", "a CONTROL frame that is not a resize or a signal");
        h.onControl?.(c);
        return;
      }
      case FrameType.CANCEL:
        h.onCancel();
        if (!s.io.ended) s.io.fail("CANCELLED", "the host cancelled this stream");
        return;
      default:
        throw new FrameError("BAD_FRAME", `the host may not send ${frameName(f.type)}`);
    }
  }

  function open(f: Frame): void {
    if (f.stream <= highestStream) {
      fatal("PROTOCOL", `stream ${f.stream} was opened before (stream ids only grow)`);
      return;
    }
    highestStream = f.stream;
    const req = parseJsonPayload(OpenRequest, f.payload);
    if (!req) {
      fatal("BAD_FRAME", `stream ${f.stream}: the OPEN request is not a valid request`);
      return;
    }
    const s = newStream(f.stream);
    if (streams.size >= MAX_STREAMS) {
      s.io.fail("TOO_MANY_STREAMS", `a connection may have ${MAX_STREAMS} streams open at once`);
      return;
    }
    if (opts.state.draining && WORK_KINDS.has(req.kind)) {
      s.io.fail("DRAINING", "the agent is draining (the VM is stopping) and takes no new work");
      return;
    }
    streams.set(f.stream, s);
    startRequest(req, s.io, opts.state).then(
      (handler) => {
        s.handler = handler;
        if (s.io.ended) {
          handler.onCancel();
          return;
        }
        for (const e of s.early.splice(0)) {
          if (phase === "closed" || s.io.ended) break;
          try {
            deliver(s, e);
          } catch (err) {
            const fe = err as FrameError;
            fatal(fe.code ?? "INTERNAL", fe.message);
            return;
          }
        }
      },
      (err: Error) => {
        if (!s.io.ended) s.io.fail("INTERNAL", `the agent could not start ${req.kind}: ${err.message}`);
      },
    );
  }

  function newStream(id: number): Stream {
    const send = (type: FrameTypeCode, payload: Buffer) => write(encodeFrame(type, id, payload));
    const sender = new StreamSender(send);
    const receiver = new StreamReceiver((n) => send(FrameType.WINDOW, windowPayload(n)));
    let ended = false;
    const finish = () => {
      streams.delete(id);
    };
    const io: AgentStreamIO = {
      id,
      get ended() {
        return ended;
      },
      accept: (value) => {
        if (!ended) sender.after(FrameType.ACCEPT, json(value));
      },
      data: (buf, sent) => {
        if (ended) return sent?.();
        sender.write(FrameType.DATA, buf, () => sent?.());
      },
      stderr: (buf, sent) => {
        if (ended) return sent?.();
        sender.write(FrameType.STDERR, buf, () => sent?.());
      },
      eof: () => {
        if (!ended) sender.after(FrameType.EOF, Buffer.alloc(0));
      },
      message: (m) => {
        if (!ended) sender.after(FrameType.MESSAGE, json(m));
      },
      end: (value) => {
        if (ended) return;
        ended = true;
        sender.after(FrameType.END, json(value), finish);
      },
      fail: (code, message) => {
        if (ended) return;
        ended = true;
        sender.close();
        send(FrameType.ERROR, json({ code, message: message.slice(0, 4000) }));
        finish();
      },
    };
    const abandon = () => {
      ended = true;
      sender.close();
    };
    return { io, sender, receiver, handler: undefined, early: [], abandon };
  }
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), "utf8");
}

const NAMES = new Map<number, string>(Object.entries(FrameType).map(([k, v]) => [v, k]));

export function frameName(type: number): string {
  return NAMES.get(type) ?? `frame type 0x${type.toString(16)}`;
}
