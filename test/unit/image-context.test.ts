import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { c as packTar } from "tar";
import { afterAll, describe, expect, it } from "vitest";
import { summarizeContext } from "../../src/server/images/context-hash.js";
import { imageNameOf } from "../../src/server/images/image-usage.js";

const tmp = mkdtempSync(join(tmpdir(), "shed-imgctx-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A context directory with these files, packed as the CLI packs it; the files' mtimes set to `mtime`. */
async function contextTar(files: Record<string, string>, mtime: number): Promise<string> {
  const dir = join(tmp, `ctx${++n}`);
  mkdirSync(dir);
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(dir, f), text);
    utimesSync(join(dir, f), mtime, mtime);
  }
  const file = join(tmp, `ctx${n}.tar`);
  await packTar({ cwd: dir, portable: true, file }, ["."]);
  return file;
}

describe("the build context's content hash", () => {
  it("is the same for the same files whenever they were written, and changes with a file's content", async () => {
    const files = { Dockerfile: "FROM shed-base:latest\n", "a.txt": "one\n" };
    const a = await summarizeContext(await contextTar(files, 1_000_000), "Dockerfile");
    const b = await summarizeContext(await contextTar(files, 2_000_000), "Dockerfile");
    expect(b.hash).toBe(a.hash);
    expect(a.files).toBe(3); // the directory and its two files
    const c = await summarizeContext(await contextTar({ ...files, "a.txt": "two\n" }, 1_000_000), "Dockerfile");
    expect(c.hash).not.toBe(a.hash);
  });

  it("depends on which Dockerfile builds it", async () => {
    const tar = await contextTar({ Dockerfile: "FROM a\n", "Dockerfile.shed": "FROM b\n" }, 1_000_000);
    expect((await summarizeContext(tar, "Dockerfile")).hash).not.toBe(
      (await summarizeContext(tar, "./Dockerfile.shed")).hash,
    );
  });

  it("refuses a context without the Dockerfile, and an upload that is not a tar", async () => {
    const tar = await contextTar({ Dockerfile: "FROM a\n" }, 1_000_000);
    await expect(summarizeContext(tar, "Dockerfile.shed")).rejects.toMatchObject({
      code: "INVALID_REQUEST",
      message: 'the build context has no file "Dockerfile.shed"',
    });
    const junk = join(tmp, "junk.tar");
    writeFileSync(junk, "this is not a tar archive, just text that goes on for a while".repeat(20));
    await expect(summarizeContext(junk, "Dockerfile")).rejects.toMatchObject({ code: "INVALID_REQUEST" });
  });
});

describe("imageNameOf", () => {
  it("reads the name from a Docker shed's image and a VM shed's build directory", () => {
    expect(imageNameOf({ backend: "docker", image: "web" })).toBe("web");
    expect(imageNameOf({ backend: "docker", image: "web:latest" })).toBe("web");
    expect(imageNameOf({ backend: "docker", image: "debian:12" })).toBe("debian:12");
    expect(imageNameOf({ backend: "qemu", image: "/i/builds/web-x86_64-0123456789abcdef" })).toBe("web");
    expect(imageNameOf({ backend: "qemu", image: "/i/builds/shed-vm-x86_64-0123456789abcdef" })).toBe("shed-vm");
    // A name that itself ends like an arch: the build's suffix is what is cut.
    expect(imageNameOf({ backend: "vz", image: "/i/builds/a-x86_64-arm64-0123456789abcdef" })).toBe("a-x86_64");
    // Sheds made before builds/ name the link.
    expect(imageNameOf({ backend: "qemu", image: "/i/shed-vm-x86_64" })).toBe("shed-vm");
  });
});
