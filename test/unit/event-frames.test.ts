import { describe, expect, it } from "vitest";
import { encodeFrame, type Frame, FrameDecoder } from "../../src/protocol/event-frames.js";

const events: Frame[] = [
  { type: "step", step: "install_hook", title: "Install hook" },
  { type: "output", step: "install_hook", stream: "stdout", text: "línea 1\nline 2 ✓\n" },
  { type: "output", step: "install_hook", stream: "stderr", text: "x".repeat(200_000) },
  { type: "output", step: "install_hook", stream: "stdout", text: "" },
  { type: "printed", bytes: Buffer.from("  [install] done ✓\n") },
  { type: "warning", step: "install_hook", message: "exit 3", hint: "fix it" },
  { type: "step_end", step: "install_hook", outcome: "warning", duration_ms: 12 },
];

describe("event frames", () => {
  it("round-trip events whatever the chunking, including multi-byte text split across chunks", () => {
    const bytes = Buffer.concat(events.flatMap(encodeFrame));
    for (const size of [1, 3, 7, 64, 4096, 65536, bytes.length]) {
      const decoder = new FrameDecoder();
      const out: Frame[] = [];
      for (let i = 0; i < bytes.length; i += size) out.push(...decoder.push(bytes.subarray(i, i + size)));
      expect(joinPrinted(out), `chunks of ${size}`).toEqual(events);
    }
  });

  it("passes the bytes of lines ready to print on as they arrive, before their frame is complete", () => {
    const [header, body] = encodeFrame({ type: "printed", bytes: Buffer.from("  [install] a\n  [install] b\n") });
    const decoder = new FrameDecoder();
    expect(decoder.push(Buffer.concat([header as Buffer, (body as Buffer).subarray(0, 5)]))).toEqual([
      { type: "printed", bytes: Buffer.from("  [in") },
    ]);
    expect(decoder.push((body as Buffer).subarray(5))).toEqual([
      { type: "printed", bytes: Buffer.from("stall] a\n  [install] b\n") },
    ]);
  });

  it("rejects a malformed header instead of guessing", () => {
    expect(() => new FrameDecoder().push(Buffer.from("Z 3\nabc"))).toThrow(/unknown event frame/);
    expect(() => new FrameDecoder().push(Buffer.from("E x\n"))).toThrow(/malformed/);
    expect(() => new FrameDecoder().push(Buffer.from("P extra 3\nabc"))).toThrow(/unknown event frame/);
  });
});

/** Consecutive `printed` pieces as one, as a terminal shows them. */
function joinPrinted(frames: Frame[]): Frame[] {
  const out: Frame[] = [];
  for (const f of frames) {
    const last = out.at(-1);
    if (f.type === "printed" && last?.type === "printed")
      out[out.length - 1] = { type: "printed", bytes: Buffer.concat([last.bytes, f.bytes]) };
    else out.push(f);
  }
  return out;
}
