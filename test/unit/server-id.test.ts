import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadOrCreateServerId, serverIdFile } from "../../src/server/server-id.js";
import { tempDir } from "../helpers/cli.js";

describe("server id", () => {
  it("is made once (32 hex digits, a new data dir made for it) and read back unchanged", () => {
    const dataDir = join(tempDir("server-id"), "data");
    const id = loadOrCreateServerId(dataDir);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(readFileSync(serverIdFile(dataDir), "utf8")).toBe(`${id}\n`);
    expect(statSync(serverIdFile(dataDir)).mode & 0o777).toBe(0o644);
    expect(loadOrCreateServerId(dataDir)).toBe(id);
    // Written atomically: no temp file left beside it.
    expect(readdirSync(dataDir)).toEqual(["server_id"]);
  });

  it("two data dirs get different ids", () => {
    expect(loadOrCreateServerId(tempDir("server-id"))).not.toBe(loadOrCreateServerId(tempDir("server-id")));
  });

  it("a damaged file is refused, never silently replaced (that would orphan the server's sheds)", () => {
    const dataDir = tempDir("server-id");
    writeFileSync(serverIdFile(dataDir), "not an id\n");
    expect(() => loadOrCreateServerId(dataDir)).toThrow(
      expect.objectContaining({ code: "INVALID_CONFIG", message: expect.stringContaining("server_id") }),
    );
    expect(readFileSync(serverIdFile(dataDir), "utf8")).toBe("not an id\n");
  });
});
