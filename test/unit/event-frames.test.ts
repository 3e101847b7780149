import { describe, expect, it } from "vitest";
import { encodeFrame, type Frame, FrameDecoder } from "../../src/core/event-frames.js";

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
      expect(out, `chunks of ${size}`).toEqual(events);
    }
  });

  it("rejects a malformed header instead of guessing", () => {
    expect(() => new FrameDecoder().push(Buffer.from("Z 3\nabc"))).toThrow(/unknown event frame/);
    expect(() => new FrameDecoder().push(Buffer.from("E x\n"))).toThrow(/malformed/);
  });
});
