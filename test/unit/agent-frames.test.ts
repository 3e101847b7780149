import { describe, expect, it } from "vitest";
import { proofFor, proofMatches } from "../../src/protocol/agent-auth.js";
import { StreamReceiver, StreamSender } from "../../src/protocol/agent-flow.js";
import {
  DATA_CHUNK,
  encodeFrame,
  encodeJsonFrame,
  FrameError,
  FrameParser,
  FrameType,
  HEADER_BYTES,
  INITIAL_WINDOW,
  MAX_PAYLOAD,
} from "../../src/protocol/agent-frames.js";
import { ExecRequest, OpenRequest, parseJsonPayload, pickVersion } from "../../src/protocol/agent-messages.js";

function sample(): Buffer[] {
  return [
    encodeJsonFrame(FrameType.HELLO, 0, { hello: "x" }),
    encodeFrame(FrameType.DATA, 7, Buffer.from("stdout bytes")),
    encodeFrame(FrameType.EOF, 7),
    encodeFrame(FrameType.STDERR, 0xffffffff, Buffer.alloc(70_000, 0xab)),
  ];
}

describe("FrameParser", () => {
  it("reads frames joined in one chunk", () => {
    const frames = new FrameParser().push(Buffer.concat(sample()));
    expect(frames.map((f) => [f.type, f.stream, f.payload.length])).toEqual([
      [FrameType.HELLO, 0, 13],
      [FrameType.DATA, 7, 12],
      [FrameType.EOF, 7, 0],
      [FrameType.STDERR, 0xffffffff, 70_000],
    ]);
  });

  it("reads the same frames from every split, down to one byte at a time", () => {
    const all = Buffer.concat(sample());
    const expected = new FrameParser().push(all);
    for (const size of [1, 2, 5, HEADER_BYTES, 10, 4096, 65_537]) {
      const p = new FrameParser();
      const got = [];
      for (let i = 0; i < all.length; i += size) got.push(...p.push(all.subarray(i, i + size)));
      expect(got).toEqual(expected);
      expect(p.pending).toBe(0);
    }
  });

  it("keeps a partial frame until its last byte arrives", () => {
    const frame = encodeFrame(FrameType.DATA, 3, Buffer.from("hello"));
    const p = new FrameParser();
    expect(p.push(frame.subarray(0, frame.length - 1))).toEqual([]);
    expect(p.pending).toBe(frame.length - 1);
    expect(p.push(frame.subarray(frame.length - 1)).map((f) => f.payload.toString())).toEqual(["hello"]);
  });

  it("accepts a payload at the cap and refuses one above it from the header alone", () => {
    const atCap = encodeFrame(FrameType.DATA, 1, Buffer.alloc(MAX_PAYLOAD));
    expect(new FrameParser().push(atCap)[0]?.payload.length).toBe(MAX_PAYLOAD);
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(MAX_PAYLOAD + 1, 0);
    header.writeUInt8(FrameType.DATA, 4);
    const p = new FrameParser();
    expect(() => p.push(header)).toThrow(FrameError);
    try {
      new FrameParser().push(header);
    } catch (err) {
      expect((err as FrameError).code).toBe("FRAME_TOO_LARGE");
    }
    // A failed parser stays failed: the connection is closing.
    expect(() => p.push(encodeFrame(FrameType.EOF, 1))).toThrow(FrameError);
    expect(() => encodeFrame(FrameType.DATA, 1, Buffer.alloc(MAX_PAYLOAD + 1))).toThrow(RangeError);
  });

  it("refuses an unknown frame type", () => {
    const bad = encodeFrame(FrameType.DATA, 1, Buffer.from("x"));
    bad.writeUInt8(0x7f, 4);
    expect(() => new FrameParser().push(bad)).toThrow(/unknown frame type 0x7f/);
  });
});

describe("flow control", () => {
  it("sends at most one window, in chunks, until credit is granted", () => {
    const sent: Buffer[] = [];
    const sender = new StreamSender((_t, p) => sent.push(p));
    let done = false;
    sender.write(FrameType.DATA, Buffer.alloc(INITIAL_WINDOW + 1000), () => {
      done = true;
    });
    sender.after(FrameType.EOF, Buffer.alloc(0));
    const total = () => sent.reduce((n, b) => n + b.length, 0);
    expect(total()).toBe(INITIAL_WINDOW);
    expect(Math.max(...sent.map((b) => b.length))).toBe(DATA_CHUNK);
    expect(done).toBe(false);
    expect(sender.backlog).toBe(1000);
    sender.grant(500);
    expect(total()).toBe(INITIAL_WINDOW + 500);
    sender.grant(500);
    expect(done).toBe(true);
    // The EOF went out only after the last byte.
    expect(sent.at(-1)?.length).toBe(0);
  });

  it("refuses a sender over its credit, and grants back what was consumed", () => {
    const grants: number[] = [];
    const r = new StreamReceiver((n) => grants.push(n));
    r.received(INITIAL_WINDOW);
    expect(() => r.received(1)).toThrow(/without credit/);
    const r2 = new StreamReceiver((n) => grants.push(n));
    r2.received(100);
    r2.consumed(100);
    expect(grants).toEqual([100]);
    r2.received(INITIAL_WINDOW);
  });
});

describe("messages and auth", () => {
  it("validates requests strictly", () => {
    const ok = Buffer.from(JSON.stringify({ kind: "exec", argv: ["true"], tty: { cols: 80, rows: 24 } }));
    expect(parseJsonPayload(OpenRequest, ok)?.kind).toBe("exec");
    for (const bad of [
      "{",
      '{"kind":"exec","argv":[]}',
      '{"kind":"exec","argv":["a\\u0000b"]}',
      '{"kind":"exec","argv":["x"],"extra":1}',
      '{"kind":"tcp","port":70000}',
      '{"kind":"nope"}',
    ]) {
      expect(parseJsonPayload(OpenRequest, Buffer.from(bad)), bad).toBeUndefined();
    }
    expect(parseJsonPayload(ExecRequest, Buffer.from('{"kind":"exec","argv":["id"],"user":"../x"}'))).toBeUndefined();
  });

  it("picks the highest common version", () => {
    expect(pickVersion([1, 2, 3], [2, 3, 4])).toBe(3);
    expect(pickVersion([1], [2])).toBeUndefined();
  });

  it("checks a proof of the secret against this connection's nonce only", () => {
    const secret = Buffer.from("a".repeat(64));
    const nonce = "0".repeat(64);
    const proof = proofFor(secret, nonce);
    expect(proofMatches(secret, nonce, proof)).toBe(true);
    expect(proofMatches(secret, "1".repeat(64), proof)).toBe(false);
    expect(proofMatches(Buffer.from("b".repeat(64)), nonce, proof)).toBe(false);
    expect(proofMatches(secret, nonce, undefined)).toBe(false);
    expect(proofMatches(secret, nonce, "zz")).toBe(false);
    expect(proof).not.toContain(secret.toString());
  });
});
