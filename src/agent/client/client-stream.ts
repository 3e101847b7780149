import { Duplex, Readable } from "node:stream";
import { StreamReceiver, StreamSender } from "../../protocol/agent-flow.js";
import { FrameType, type FrameTypeCode, windowPayload } from "../../protocol/agent-frames.js";
import type { AgentMessage } from "../../protocol/agent-messages.js";

/**
 * The host's end of one stream: what arrives is handed to the callbacks, what
 * goes out waits for credit. `accepted` settles on the agent's ACCEPT (or the
 * ERROR refusing the request), `ended` on its END (or an ERROR, or the loss of
 * the connection).
 */
export class ClientStream {
  readonly sender: StreamSender;
  readonly receiver: StreamReceiver;
  readonly accepted: Promise<unknown>;
  readonly ended: Promise<unknown>;
  onData: ((buf: Buffer) => void) | undefined;
  onStderr: ((buf: Buffer) => void) | undefined;
  onEof: (() => void) | undefined;
  onMessage: ((m: AgentMessage) => void) | undefined;
  private settleAccept!: { resolve: (v: unknown) => void; reject: (e: Error) => void };
  private settleEnd!: { resolve: (v: unknown) => void; reject: (e: Error) => void };
  private done = false;

  constructor(
    readonly id: number,
    private readonly send: (type: FrameTypeCode, payload: Buffer) => void,
  ) {
    this.sender = new StreamSender(send);
    this.receiver = new StreamReceiver((n) => send(FrameType.WINDOW, windowPayload(n)));
    this.accepted = new Promise((resolve, reject) => {
      this.settleAccept = { resolve, reject };
    });
    this.ended = new Promise((resolve, reject) => {
      this.settleEnd = { resolve, reject };
    });
    // Callers await one or the other; neither may surface as unhandled.
    this.accepted.catch(() => {});
    this.ended.catch(() => {});
  }

  get isDone(): boolean {
    return this.done;
  }

  accept(value: unknown): void {
    this.settleAccept.resolve(value);
  }

  end(value: unknown): void {
    this.done = true;
    this.sender.close();
    this.settleAccept.resolve(value);
    this.settleEnd.resolve(value);
  }

  fail(err: Error): void {
    this.done = true;
    this.sender.close(err);
    this.settleAccept.reject(err);
    this.settleEnd.reject(err);
  }

  write(buf: Buffer, done?: (err?: Error) => void): void {
    this.sender.write(FrameType.DATA, buf, done);
  }

  eof(): void {
    if (!this.done) this.sender.after(FrameType.EOF, Buffer.alloc(0));
  }

  control(value: unknown): void {
    if (!this.done) this.sender.after(FrameType.CONTROL, Buffer.from(JSON.stringify(value), "utf8"));
  }

  cancel(): void {
    if (!this.done) this.send(FrameType.CANCEL, Buffer.alloc(0));
  }
}

/**
 * A Readable fed by a stream's bytes whose credit is granted back only as the
 * reader takes them: a reader that stops reading stops the guest's producer
 * (after one window) instead of growing this process's memory.
 */
export function creditedReadable(stream: ClientStream): { readable: Readable; push(buf: Buffer): void; end(): void } {
  let held = 0;
  const readable = new Readable({
    read() {
      if (held > 0) {
        const n = held;
        held = 0;
        stream.receiver.consumed(n);
      }
    },
  });
  return {
    readable,
    push(buf) {
      if (readable.push(buf)) stream.receiver.consumed(buf.length);
      else held += buf.length;
    },
    end() {
      readable.push(null);
    },
  };
}

/** A stream's bytes both ways as one Duplex (port forwards, Unix relays, tar uploads). */
export function streamDuplex(stream: ClientStream): Duplex {
  let held = 0;
  const duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      if (held > 0) {
        const n = held;
        held = 0;
        stream.receiver.consumed(n);
      }
    },
    write(chunk: Buffer, _enc, cb) {
      if (stream.isDone) return cb();
      stream.write(chunk, (err) => cb(err));
    },
    final(cb) {
      stream.eof();
      cb();
    },
    destroy(err, cb) {
      stream.cancel();
      cb(err);
    },
  });
  stream.onData = (buf) => {
    if (duplex.push(buf)) stream.receiver.consumed(buf.length);
    else held += buf.length;
  };
  stream.onEof = () => duplex.push(null);
  stream.ended.then(
    () => duplex.push(null),
    (err: Error) => duplex.destroy(err),
  );
  return duplex;
}
