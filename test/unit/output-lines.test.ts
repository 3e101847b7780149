import { describe, expect, it } from "vitest";
import { LinePrefixer } from "../../src/core/output-lines.js";

/** The prefixer's bytes as text, for readable expectations. */
function marker() {
  const p = new LinePrefixer();
  return {
    push: (step: string, text: string | Buffer) => p.push(step, Buffer.from(text)).toString("utf8"),
    end: (step: string) => p.end(step).toString("utf8"),
  };
}

describe("output lines marked with their step", () => {
  it("holds an unfinished line until its newline, per step", () => {
    const p = marker();
    expect(p.push("install_hook", "one\ntw")).toBe("  [install] one\n");
    expect(p.push("clone", "Cloning\n")).toBe("  [clone] Cloning\n");
    expect(p.push("install_hook", "o\nthree")).toBe("  [install] two\n");
    expect(p.end("install_hook")).toBe("  [install] three\n");
    expect(p.end("install_hook")).toBe("");
  });

  it("shows where a progress meter's line ended up", () => {
    const p = marker();
    expect(p.push("clone", "Receiving 10%\rReceiving 50%\rReceiving 100%, done.\n")).toBe(
      "  [clone] Receiving 100%, done.\n",
    );
    expect(p.push("clone", "Resolving 1%\rResolving 2%")).toBe("");
    expect(p.push("clone", "\rResolving 3%")).toBe("");
    expect(p.end("clone")).toBe("  [clone] Resolving 3%\n");
  });

  it("passes UTF-8 through unchanged, even a character split between two chunks", () => {
    const p = marker();
    const text = Buffer.from("größer ✓ 数据\nzwei\n");
    const cutInsideCheckMark = text.indexOf(Buffer.from("✓")) + 1;
    const out =
      p.push("install_hook", text.subarray(0, cutInsideCheckMark)) +
      p.push("install_hook", text.subarray(cutInsideCheckMark));
    expect(out).toBe("  [install] größer ✓ 数据\n  [install] zwei\n");
  });

  it("marks every line of a chunk of any size, held line included", () => {
    const p = marker();
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`);
    const text = lines.join("\n");
    expect(p.push("startup_hook", "held ")).toBe("");
    const out = p.push("startup_hook", text) + p.end("startup_hook");
    expect(out).toBe(`  [startup] held ${lines.map((l) => `${l}\n`).join("  [startup] ")}`);
  });

  it("shows a line that never ends in pieces instead of holding it without bound", () => {
    const p = marker();
    const chunk = "x".repeat(40_000);
    expect(p.push("startup_hook", chunk)).toBe("");
    const shown = p.push("startup_hook", chunk);
    expect(shown).toBe(`  [startup] ${chunk}${chunk}\n`);
    expect(p.end("startup_hook")).toBe("");
  });
});
