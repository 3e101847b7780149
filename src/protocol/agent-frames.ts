/**
 * The wire format between the host and shed-agent (the process inside each VM).
 *
 * Every frame is a 9-byte header and a payload:
 *   u32 BE payload length | u8 type | u32 BE stream id | payload
 * Stream 0 is the connection itself (hello, ready, fatal errors); the host opens
 * every other stream with OPEN and the agent ends it with END or ERROR, so exec,
 * tar, port forwards and relays share one connection. Bulk bytes (DATA, STDERR)
 * are flow-controlled per stream by credit (WINDOW frames), so a fast producer
 * can never queue more than one window per stream on the other side.
 *
 * The version lives in the HELLO each side sends first (agent-messages.ts): the
 * header never changes between versions, so a peer can always read a HELLO and
 * say which versions it speaks.
 */

export const HEADER_BYTES = 9;
/** A payload above this is a protocol error: bulk data is split into frames of at most DATA_CHUNK. */
export const MAX_PAYLOAD = 1024 * 1024;
/** What a sender puts in one DATA frame (well below the cap, so one frame never hogs the connection). */
export const DATA_CHUNK = 64 * 1024;
/** Bytes a sender may send on a stream before the receiver grants more (per direction). */
export const INITIAL_WINDOW = 256 * 1024;

export const FrameType = {
  /** JSON: who speaks, which versions, what it can do; the agent's carries the auth nonce. */
  HELLO: 0x01,
  /** JSON: the agent accepted the host's hello (and proof): requests may follow. */
  READY: 0x02,
  /** JSON {code, message}: on stream 0 the connection closes after it; on a stream, that stream ends. */
  ERROR: 0x03,
  /** JSON request (agent-messages.ts OpenRequest): host → agent, opens the stream. */
  OPEN: 0x10,
  /** JSON: the agent started what OPEN asked for (exec: the pid). */
  ACCEPT: 0x11,
  /** Bytes: stdin (host → agent); stdout, tar or relay bytes (both ways). */
  DATA: 0x12,
  /** Bytes: stderr of an exec (agent → host). */
  STDERR: 0x13,
  /** The sender sends no more DATA on this stream (stdin EOF, tar end, relay half-close). */
  EOF: 0x14,
  /** u32 BE: the receiver consumed this many more bytes; the sender may send as many more. */
  WINDOW: 0x15,
  /** JSON {resize} | {signal}: host → agent, for an exec. */
  CONTROL: 0x16,
  /** JSON result (exit code, health, drain count...): the agent's last frame on a stream. */
  END: 0x17,
  /** Empty: the host gives up on a stream (the agent stops it and answers with END). */
  CANCEL: 0x18,
  /** JSON AgentMessage: agent → host, on a subscription stream. */
  MESSAGE: 0x19,
} as const;

export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export interface Frame {
  type: FrameTypeCode;
  stream: number;
  payload: Buffer;
}

/** Why a byte stream is not this protocol; the connection closes with an ERROR frame saying so. */
export class FrameError extends Error {
  constructor(
    readonly code: "FRAME_TOO_LARGE" | "UNKNOWN_FRAME_TYPE" | "BAD_FRAME" | "FLOW_CONTROL",
    message: string,
  ) {
    super(message);
    this.name = "FrameError";
  }
}

export function encodeFrame(type: FrameTypeCode, stream: number, payload: Buffer | Uint8Array = EMPTY): Buffer {
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`frame payload of ${payload.length} bytes exceeds the cap`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32BE(stream >>> 0, 5);
  return payload.length === 0 ? header : Buffer.concat([header, payload]);
}

export function encodeJsonFrame(type: FrameTypeCode, stream: number, value: unknown): Buffer {
  return encodeFrame(type, stream, Buffer.from(JSON.stringify(value), "utf8"));
}

const EMPTY = Buffer.alloc(0);

/**
 * A push parser: feed it whatever the socket delivered, in any split, and it
 * returns the complete frames. It keeps at most one partial frame (header plus
 * at most MAX_PAYLOAD bytes), and rejects an oversized or unknown frame from its
 * header alone, before buffering its payload. After an error it stays failed.
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: FrameError | undefined;

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= HEADER_BYTES) {
      const header = this.peek(HEADER_BYTES);
      const length = header.readUInt32BE(0);
      const type = header.readUInt8(4);
      if (length > MAX_PAYLOAD) {
        throw this.fail("FRAME_TOO_LARGE", `frame of ${length} bytes exceeds the ${MAX_PAYLOAD}-byte cap`);
      }
      if (!KNOWN_TYPES.has(type)) throw this.fail("UNKNOWN_FRAME_TYPE", `unknown frame type 0x${type.toString(16)}`);
      if (this.buffered < HEADER_BYTES + length) break;
      const whole = this.take(HEADER_BYTES + length);
      frames.push({
        type: type as FrameTypeCode,
        stream: whole.readUInt32BE(5),
        payload: whole.subarray(HEADER_BYTES),
      });
    }
    return frames;
  }

  /** Bytes held for a frame not yet complete. */
  get pending(): number {
    return this.buffered;
  }

  private fail(code: FrameError["code"], message: string): FrameError {
    this.failed = new FrameError(code, message);
    this.chunks = [];
    this.buffered = 0;
    return this.failed;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.chunks);
      out = joined.subarray(0, n);
      this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}

export function parseWindow(payload: Buffer): number {
  if (payload.length !== 4) throw new FrameError("BAD_FRAME", `a WINDOW frame carries 4 bytes, not ${payload.length}`);
  return payload.readUInt32BE(0);
}

export function windowPayload(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
