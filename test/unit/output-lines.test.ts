import { describe, expect, it } from "vitest";
import { LinePrefixer } from "../../src/core/output-lines.js";

describe("output lines marked with their step", () => {
  it("holds an unfinished line until its newline, per step", () => {
    const p = new LinePrefixer();
    expect(p.push("install_hook", "one\ntw")).toBe("  [install] one\n");
    expect(p.push("clone", "Cloning\n")).toBe("  [clone] Cloning\n");
    expect(p.push("install_hook", "o\nthree")).toBe("  [install] two\n");
    expect(p.end("install_hook")).toBe("  [install] three\n");
    expect(p.end("install_hook")).toBe("");
  });

  it("shows where a progress meter's line ended up", () => {
    const p = new LinePrefixer();
    expect(p.push("clone", "Receiving 10%\rReceiving 50%\rReceiving 100%, done.\n")).toBe(
      "  [clone] Receiving 100%, done.\n",
    );
    expect(p.push("clone", "Resolving 1%\rResolving 2%")).toBe("");
    expect(p.end("clone")).toBe("  [clone] Resolving 2%\n");
  });
});
