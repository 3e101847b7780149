import { DATA_CHUNK, FrameError, FrameType, type FrameTypeCode, INITIAL_WINDOW } from "./agent-frames.js";

/**
 * Per-stream credit, the same on both ends of an agent connection. A sender
 * may have at most INITIAL_WINDOW bytes of DATA/STDERR outstanding on a stream;
 * the receiver grants more (WINDOW) only as its consumer takes the bytes. So a
 * fast producer waits instead of filling the other side's memory, and one slow
 * stream never holds up the others on the same connection.
 */

type Send = (type: FrameTypeCode, payload: Buffer) => void;

interface Queued {
  type: FrameTypeCode;
  buf: Buffer;
  done: ((err?: Error) => void) | undefined;
}

export class StreamSender {
  private credit = INITIAL_WINDOW;
  private readonly queue: Queued[] = [];
  private closed = false;

  constructor(private readonly send: Send) {}

  /** Queues bytes (DATA or STDERR); `done` runs once they are all on the wire. */
  write(type: FrameTypeCode, buf: Buffer, done?: (err?: Error) => void): void {
    if (this.closed) {
      done?.(new Error("stream closed"));
      return;
    }
    this.queue.push({ type, buf, done });
    this.flush();
  }

  /** Queues a frame without a byte count (EOF, END) behind the bytes already queued. */
  after(type: FrameTypeCode, payload: Buffer, done?: () => void): void {
    if (this.closed) return;
    this.queue.push({ type, buf: payload, done: done && (() => done()) });
    this.flush();
  }

  grant(n: number): void {
    this.credit += n;
    if (this.credit > 2 ** 32) throw new FrameError("FLOW_CONTROL", "a WINDOW grant overflowed the stream's credit");
    this.flush();
  }

  /** Bytes queued and not yet sent (a sender stops reading its source while this is non-zero). */
  get backlog(): number {
    let n = 0;
    for (const q of this.queue) n += q.buf.length;
    return n;
  }

  /** Drops what is queued (the stream ended or the connection went). */
  close(err: Error = new Error("stream closed")): void {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.done?.(err);
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0] as Queued;
      if (head.type !== FrameType.DATA && head.type !== FrameType.STDERR) {
        this.queue.shift();
        this.send(head.type, head.buf);
        head.done?.();
        continue;
      }
      if (head.buf.length === 0) {
        this.queue.shift();
        head.done?.();
        continue;
      }
      if (this.credit <= 0) return;
      const n = Math.min(this.credit, DATA_CHUNK, head.buf.length);
      this.send(head.type, head.buf.subarray(0, n));
      this.credit -= n;
      head.buf = head.buf.subarray(n);
    }
  }
}

/** The receiving end of a stream's credit: checks the sender kept to it and grants as bytes are consumed. */
export class StreamReceiver {
  /** Bytes received and not yet granted back. */
  private outstanding = 0;
  private consumedUngranted = 0;

  constructor(private readonly grant: (n: number) => void) {}

  /** Accounts for received bytes; a sender over its credit breaks the protocol. */
  received(n: number): void {
    this.outstanding += n;
    if (this.outstanding > INITIAL_WINDOW) {
      throw new FrameError("FLOW_CONTROL", `more than ${INITIAL_WINDOW} bytes were sent on a stream without credit`);
    }
  }

  /** The consumer took n bytes: grant them back, in batches so small reads do not each cost a frame. */
  consumed(n: number): void {
    this.consumedUngranted += n;
    if (this.consumedUngranted >= INITIAL_WINDOW / 8 || this.consumedUngranted >= this.outstanding) {
      const g = this.consumedUngranted;
      this.consumedUngranted = 0;
      this.outstanding -= g;
      this.grant(g);
    }
  }
}
