import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readBelow } from "../../src/guest/host-file.js";

/**
 * readBelow reads a guest's file where its volume is on this host: below the
 * trusted root, no symlink is ever gone through (the guest could point one at
 * any host file), and only plain answers are given.
 */
const dirs: string[] = [];
function tree(): { root: string; outside: string } {
  const base = mkdtempSync(join(tmpdir(), "shed-hostfile-"));
  dirs.push(base);
  const root = join(base, "volume");
  const outside = join(base, "host");
  mkdirSync(root);
  mkdirSync(outside);
  // What a symlink must never reach: a host file with a provision of its own.
  writeFileSync(join(outside, "provision.yaml"), "hooks:\n  shutdown: host-secret.sh\n");
  return { root, outside };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const PARTS = [".shed", "provision.yaml"];

describe("reading a guest file below a volume's folder", () => {
  it("reads a regular file, up to the limit, and says when the limit was reached", async () => {
    const { root } = tree();
    mkdirSync(join(root, ".shed"));
    writeFileSync(join(root, ".shed", "provision.yaml"), "hooks: {}\n");
    const read = await readBelow(root, PARTS, 100);
    expect(read).toEqual({ kind: "file", bytes: Buffer.from("hooks: {}\n"), atLimit: false });
    const capped = await readBelow(root, PARTS, 5);
    expect(capped).toEqual({ kind: "file", bytes: Buffer.from("hooks"), atLimit: true });
  });

  it("says missing when a component does not exist", async () => {
    const { root } = tree();
    expect(await readBelow(root, PARTS, 100)).toEqual({ kind: "missing" });
    mkdirSync(join(root, ".shed"));
    expect(await readBelow(root, PARTS, 100)).toEqual({ kind: "missing" });
  });

  it("never goes through a symlinked directory or file to a host file: no answer instead", async () => {
    const { root, outside } = tree();
    symlinkSync(outside, join(root, ".shed"));
    expect(await readBelow(root, PARTS, 100)).toBeUndefined();
    rmSync(join(root, ".shed"));
    mkdirSync(join(root, ".shed"));
    symlinkSync(join(outside, "provision.yaml"), join(root, ".shed", "provision.yaml"));
    expect(await readBelow(root, PARTS, 100)).toBeUndefined();
    // A relative link that stays inside is not followed either: the guest resolves its own links.
    rmSync(join(root, ".shed", "provision.yaml"));
    writeFileSync(join(root, "real.yaml"), "hooks: {}\n");
    symlinkSync("../real.yaml", join(root, ".shed", "provision.yaml"));
    expect(await readBelow(root, PARTS, 100)).toBeUndefined();
  });

  it("does not wait on a FIFO, and gives no answer for a directory", async () => {
    const { root } = tree();
    mkdirSync(join(root, ".shed"));
    execFileSync("mkfifo", [join(root, ".shed", "provision.yaml")]);
    expect(await readBelow(root, PARTS, 100)).toBeUndefined();
    rmSync(join(root, ".shed", "provision.yaml"));
    mkdirSync(join(root, ".shed", "provision.yaml"));
    expect(await readBelow(root, PARTS, 100)).toBeUndefined();
  });

  it("refuses path components that are not plain names", async () => {
    const { root } = tree();
    for (const bad of [[".."], ["a/b"], [""], ["."]]) expect(await readBelow(root, bad, 100)).toBeUndefined();
  });
});
