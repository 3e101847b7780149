import { describe, expect, it } from "vitest";
import type { LifecycleEvent } from "../../src/core/events.js";
import { type Frame, FrameDecoder } from "../../src/protocol/event-frames.js";
import { type EventFormat, EventWriter, OUTPUT_BACKLOG_LIMIT } from "../../src/server/api/event-writer.js";

/** An in-memory response: what the writer wrote, and a backlog the test can set. */
function response(backlog = 0) {
  const chunks: Buffer[] = [];
  return {
    chunks,
    writableLength: backlog,
    write: (c: Buffer | string) => chunks.push(Buffer.from(c)),
    cork() {},
    uncork() {},
  };
}

const text = Buffer.from("größer ✓\nzwei\ndrei");
const cut = text.indexOf(Buffer.from("✓")) + 1; // inside the check mark's three bytes
const run: LifecycleEvent[] = [
  { type: "step", step: "install_hook", title: "Install hook" },
  { type: "output_bytes", step: "install_hook", stream: "stdout", bytes: text.subarray(0, cut) },
  { type: "output_bytes", step: "install_hook", stream: "stdout", bytes: text.subarray(cut) },
  { type: "step_end", step: "install_hook", outcome: "succeeded", duration_ms: 5 },
];

function written(format: EventFormat, backlog = 0): Buffer {
  const res = response(backlog);
  const w = new EventWriter(res, format);
  for (const ev of run) w.send(ev);
  w.close();
  return Buffer.concat(res.chunks);
}

describe("the event writer", () => {
  it("marks lines for the CLI, and prints the unfinished last line when its step ends", () => {
    const frames = new FrameDecoder().push(written("lines"));
    const printed = frames.flatMap((f) => (f.type === "printed" ? [f.bytes.toString()] : [])).join("");
    expect(printed).toBe("  [install] größer ✓\n  [install] zwei\n  [install] drei\n");
    expect(frames.map((f) => f.type)).toEqual(["step", "printed", "step_end"]);
  });

  it("decodes text for JSON clients without breaking a character split between chunks", () => {
    const frames: Frame[] = new FrameDecoder().push(written("frames"));
    const out = frames.flatMap((f) => (f.type === "output" ? [f.text] : [])).join("");
    expect(out).toBe("größer ✓\nzwei\ndrei");
    const sse = written("sse").toString();
    const data = [...sse.matchAll(/^event: output\ndata: (.*)$/gm)]
      .map((m) => JSON.parse(m[1] as string).text)
      .join("");
    expect(data).toBe("größer ✓\nzwei\ndrei");
    expect(sse).not.toContain("\uFFFD");
  });

  it("leaves output out for a client that reads too slowly, and says how much", () => {
    const frames = new FrameDecoder().push(written("lines", OUTPUT_BACKLOG_LIMIT + 1));
    const printed = frames.flatMap((f) => (f.type === "printed" ? [f.bytes.toString()] : [])).join("");
    expect(printed).toContain(`[shed: ${text.length} bytes of output not shown here`);
    expect(printed).not.toContain("zwei");
  });
});
