import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileFollower } from "../../src/guest/file-follower.js";

const dirs: string[] = [];
function file(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), "shed-follow-"));
  dirs.push(dir);
  const path = join(dir, "hook.log");
  writeFileSync(path, content);
  return path;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("following a hook's log on the host", () => {
  it("passes on what is written while it follows, then what is left when finished", async () => {
    const path = file("first\n");
    const got: string[] = [];
    let arrived: () => void = () => {};
    const next = () => new Promise<void>((r) => (arrived = r));
    const follower = new FileFollower(path, (b) => {
      got.push(b.toString());
      arrived();
    });
    let piece = next();
    await piece;
    piece = next();
    appendFileSync(path, "second\n");
    await piece;
    appendFileSync(path, "third\n");
    await follower.finish();
    expect(got).toEqual(["first\n", "second\n", "third\n"]);
  });

  it("stops where the file ended when it was finished, though a daemon writes faster than it reads", async () => {
    const path = file("x".repeat(3 << 20));
    let read = 0;
    let appended = 0;
    // Every piece read makes the file grow by twice as much (up to 32 MiB, so that a follower without
    // the bound fails this test instead of filling the disk).
    const follower = new FileFollower(path, (b) => {
      read += b.length;
      if (appended > 32 << 20) return;
      appendFileSync(path, Buffer.alloc(b.length * 2, 0x79));
      appended += b.length * 2;
    });
    await follower.finish();
    expect(read).toBe(3 << 20);
  });

  it("never follows a symlink (a hook could point its log at a file of the host) or a FIFO", async () => {
    const secret = file("host secret\n");
    const link = join(secret, "..", "link.log");
    symlinkSync(secret, link);
    const got: Buffer[] = [];
    await expect(new FileFollower(link, (b) => got.push(b)).finish()).rejects.toThrow(/ELOOP/);
    expect(got).toEqual([]);
    const fifo = join(secret, "..", "fifo.log");
    execFileSync("mkfifo", [fifo]);
    await expect(new FileFollower(fifo, (b) => got.push(b)).finish()).rejects.toThrow(/not a regular file/);
  });

  it("a log that cannot be read is reported by finish", async () => {
    const follower = new FileFollower("/nonexistent/shed/hook.log", () => {});
    await expect(follower.finish()).rejects.toThrow(/ENOENT/);
  });
});
