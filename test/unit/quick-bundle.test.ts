import { build } from "esbuild";
import { describe, expect, it } from "vitest";

/**
 * The quick path (src/cli/quick.ts) exists to leave out what costs start-up
 * time: commander, classic zod (zod/mini is what it may use), ssh2. A module
 * it reaches that imports one of them brings it back whole (render.ts once
 * did, through core/duration.ts's zod schema: 600 KB instead of 170 KB), so
 * the bundle's inputs are checked here, as scripts/build.mjs bundles it.
 */
describe("the quick path's bundle", () => {
  it("leaves out commander, classic zod and ssh2", async () => {
    const r = await build({
      entryPoints: ["src/cli/quick.ts"],
      bundle: true,
      platform: "node",
      format: "cjs",
      write: false,
      metafile: true,
      external: ["cpu-features", "*.node"],
      logLevel: "error",
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.some((f) => f.startsWith("src/cli/commands/lifecycle-ops.ts"))).toBe(true);
    const heavy = inputs.filter((f) => /node_modules\/(commander|ssh2|zod\/v4\/classic)\//.test(f));
    expect(heavy).toEqual([]);
  });
});
