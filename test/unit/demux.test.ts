import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { demux } from "../../src/backends/docker/docker-exec.js";

function frame(type: number, text: string): Buffer {
  const body = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

describe("the engine's multiplexed stream", () => {
  it("is split into stdout and stderr whatever the chunking", () => {
    const bytes = Buffer.concat([frame(1, "out 1\n"), frame(2, "err ✓\n"), frame(1, "x".repeat(70_000)), frame(1, "")]);
    for (const size of [1, 5, 8, 9, 4096, bytes.length]) {
      const source = new PassThrough();
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const stdout = new PassThrough().on("data", (c: Buffer) => out.push(c));
      const stderr = new PassThrough().on("data", (c: Buffer) => err.push(c));
      demux(source, stdout, stderr);
      for (let i = 0; i < bytes.length; i += size) source.write(bytes.subarray(i, i + size));
      expect(Buffer.concat(out).toString(), `chunks of ${size}`).toBe(`out 1\n${"x".repeat(70_000)}`);
      expect(Buffer.concat(err).toString()).toBe("err ✓\n");
    }
  });
});
