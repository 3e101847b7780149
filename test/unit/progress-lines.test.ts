import { describe, expect, it } from "vitest";
import { createOutput } from "../../src/cli/render.js";

/** A stream that is not a terminal (a pipe, a file), recording what is written. */
function pipe(): { stream: NodeJS.WriteStream; text: () => string } {
  const written: string[] = [];
  const stream = { isTTY: false, write: (t: string | Uint8Array) => written.push(Buffer.from(t).toString()) > 0 };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => written.join("") };
}

describe("progress in a pipe", () => {
  it("prints one line per finished step, with the step's output before it, marked with the step", () => {
    const { stream, text } = pipe();
    const out = createOutput(false, stream);
    out.progress({ type: "step", step: "storage", title: "Storage setup" });
    out.progress({ type: "step_end", step: "storage", outcome: "succeeded", duration_ms: 121, message: "volume made" });
    out.progress({ type: "step", step: "install", title: "Install hook" });
    out.printed(Buffer.from("[install] npm ci\n"));
    out.progress({ type: "warning", step: "install", message: "slow mirror" });
    out.progress({ type: "step_end", step: "install", outcome: "warning", duration_ms: 2500 });
    out.progress({ type: "step", step: "startup", title: "Startup hook" });
    out.progress({ type: "step_end", step: "startup", outcome: "skipped", duration_ms: 0, message: "no hook" });
    out.progress({ type: "step", step: "stop", title: "Process stop" });
    out.progress({ type: "step_end", step: "stop", outcome: "failed", duration_ms: 40, message: "engine gone" });
    out.done();
    expect(text().split("\n")).toEqual([
      "✓ Storage setup (121ms): volume made",
      "[install] npm ci",
      "  ! warning (install): slow mirror",
      "! Install hook (2.5s)",
      "- Startup hook (0ms): no hook",
      "✗ Process stop (40ms): engine gone",
      "",
    ]);
  });

  it("names the step an operation never finished (the connection was cut)", () => {
    const { stream, text } = pipe();
    const out = createOutput(false, stream);
    out.progress({ type: "step", step: "clone", title: "Repo clone" });
    out.done();
    expect(text()).toBe("… Repo clone (did not finish)\n");
  });

  it("with --json, progress on stderr is the same lines", () => {
    const { stream, text } = pipe();
    const out = createOutput(true, stream);
    out.progress({ type: "step", step: "storage", title: "Storage setup" });
    out.progress({ type: "step_end", step: "storage", outcome: "succeeded", duration_ms: 5 });
    out.done();
    expect(text()).toBe("✓ Storage setup (5ms)\n");
  });
});
