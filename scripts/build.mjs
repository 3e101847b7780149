// Bundles the two programs into dist/ (one file each, fast start-up).
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { build } from "esbuild";
import { buildAgent } from "./build-agent.mjs";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  define: { __SHED_VERSION__: JSON.stringify(version) },
  // ssh2's optional native helpers; it falls back to pure JS without them.
  external: ["cpu-features", "*.node"],
  // jsonc-parser's main entry is UMD, whose require() of its own parts esbuild cannot follow: its ES build.
  alias: { "jsonc-parser": "jsonc-parser/lib/esm/main.js" },
  minify: true,
};

const CLI_BUNDLES = { "shed-main": "src/cli/main.ts", "shed-quick": "src/cli/quick.ts" };

// Outputs of earlier layouts and caches of earlier builds (a fresh clone has no dist/ yet).
mkdirSync("dist", { recursive: true });
for (const f of readdirSync("dist", { withFileTypes: true })) {
  if (/^shed(\.mjs|-(main|quick)\.[0-9a-f]+\.cache)/.test(f.name)) rmSync(`dist/${f.name}`, { force: true });
}

await Promise.all([
  // The guest agent (dist/agent/), for the VM images.
  buildAgent(common),
  // The CLI is CommonJS so that dist/shed.cjs (src/cli/boot.ts) can run it from V8's code cache: the
  // full CLI, and the quick path for `shed list` (src/cli/quick.ts), which leaves out most of it.
  ...Object.entries(CLI_BUNDLES).map(([name, entry]) =>
    build({
      ...common,
      format: "cjs",
      entryPoints: [entry],
      outfile: `dist/${name}.cjs`,
      // import() would need a module loader that vm.Script (boot.ts) does not have: make it require().
      supported: { "dynamic-import": false },
      define: { ...common.define, "import.meta.url": "__shedMetaUrl" },
      banner: { js: 'var __shedMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    }),
  ),
  build({
    ...common,
    format: "esm",
    entryPoints: ["src/server/main.ts"],
    outfile: "dist/shed-server.mjs",
    banner: {
      js: [
        "import { createRequire as __shedCreateRequire } from 'node:module';",
        "import { dirname as __shedDirname } from 'node:path';",
        "import { fileURLToPath as __shedFileURLToPath } from 'node:url';",
        "const require = __shedCreateRequire(import.meta.url);",
        "const __filename = __shedFileURLToPath(import.meta.url);",
        "const __dirname = __shedDirname(__filename);",
      ].join(" "),
    },
  }),
]);
const hashes = Object.fromEntries(
  Object.keys(CLI_BUNDLES).map((name) => [
    name,
    createHash("sha256")
      .update(readFileSync(`dist/${name}.cjs`))
      .digest("hex")
      .slice(0, 16),
  ]),
);
await build({
  ...common,
  format: "cjs",
  sourcemap: false,
  entryPoints: ["src/cli/boot.ts"],
  outfile: "dist/shed.cjs",
  define: { ...common.define, __SHED_BUNDLE_HASHES__: JSON.stringify(hashes) },
});
console.log(`built dist/shed.cjs, dist/shed-server.mjs and dist/agent/ (shed ${version})`);
