/**
 * The CLI's entry point in dist/ (shed.cjs). It picks what to load for the
 * argv, so that reading costs little more than starting Node does:
 * - `shed version` is answered here, with nothing else loaded;
 * - `shed list` runs the quick path (shed-quick.cjs, src/cli/quick.ts), which
 *   hands back to the full CLI what only the full CLI does;
 * - everything else runs the full CLI (shed-main.cjs, src/cli/main.ts).
 *
 * A bundle is loaded through V8's code cache, so that a command does not
 * compile its JavaScript again each time it runs (about 40 ms of the full
 * CLI's start-up). The cache is named after a hash of the bundle (V8 itself
 * checks the length of the source, not its content), made by the first run
 * after a build, and rewritten when V8 rejects it (another Node.js version).
 * Writing it is best effort: where dist/ is read-only, the CLI runs as before.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { join } from "node:path";
import { Script } from "node:vm";
import { type QuickCommand, quickCommand } from "./quick-argv.js";
import { versionOutput } from "./version-output.js";

type Bundle = "shed-main" | "shed-quick";
declare const __SHED_BUNDLE_HASHES__: Record<Bundle, string>;

function load(bundle: Bundle): Record<string, unknown> {
  const dir = __dirname;
  const file = join(dir, `${bundle}.cjs`);
  const cacheFile = join(dir, `${bundle}.${__SHED_BUNDLE_HASHES__[bundle]}.cache`);
  const source = readFileSync(file, "utf8");
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new Script(Module.wrap(source), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    // At exit, so the cache also holds the functions this run compiled lazily.
    process.once("exit", () => {
      try {
        const tmp = `${cacheFile}.${process.pid}`;
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        // Read-only install: no cache, same behaviour.
      }
    });
  }
  const mod = { exports: {} as Record<string, unknown> };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, dir);
  return mod.exports;
}

// bin/shed kept NODE_EXTRA_CA_CERTS from this process (it trusts pinned certificates only); the
// processes the CLI starts get the user's value back.
const savedCaCerts = process.env.SHED_NODE_EXTRA_CA_CERTS;
if (savedCaCerts !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = savedCaCerts;
  delete process.env.SHED_NODE_EXTRA_CA_CERTS;
}

const quick = quickCommand(process.argv.slice(2));
if (quick?.command === "version") process.stdout.write(versionOutput(quick.json));
else if (quick) {
  const { runQuick } = load("shed-quick") as { runQuick(cmd: QuickCommand): Promise<boolean> };
  void runQuick(quick).then((handled) => {
    if (!handled) load("shed-main");
  });
} else load("shed-main");
