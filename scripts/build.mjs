// Bundles the two programs into dist/ (one file each, fast start-up).
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  define: { __SHED_VERSION__: JSON.stringify(version) },
  // ssh2's optional native helpers; it falls back to pure JS without them.
  external: ["cpu-features", "*.node"],
  minify: true,
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
};
await Promise.all([
  build({ ...common, entryPoints: ["src/cli/main.ts"], outfile: "dist/shed.mjs" }),
  build({ ...common, entryPoints: ["src/server/main.ts"], outfile: "dist/shed-server.mjs" }),
]);
console.log(`built dist/shed.mjs and dist/shed-server.mjs (shed ${version})`);
