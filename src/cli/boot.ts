/**
 * The CLI's entry point in dist/ (shed.cjs): loads the bundled CLI
 * (shed-main.cjs) through V8's code cache, so that a command does not compile
 * the megabyte of JavaScript again each time it runs (about 40 ms of the
 * CLI's start-up, measured on `shed version` and `shed list`).
 *
 * The cache is named after a hash of the bundle (V8 itself checks the length
 * of the source, not its content), made by the first run after a build, and
 * rewritten when V8 rejects it (another Node.js version). Writing it is best
 * effort: where dist/ is read-only, the CLI runs as before.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { join } from "node:path";
import { Script } from "node:vm";

declare const __SHED_MAIN_HASH__: string;

const dir = __dirname;
const file = join(dir, "shed-main.cjs");
const cacheFile = join(dir, `shed-main.${__SHED_MAIN_HASH__}.cache`);

const source = readFileSync(file, "utf8");
let cachedData: Buffer | undefined;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new Script(Module.wrap(source), { filename: file, cachedData });
if (cachedData === undefined || script.cachedDataRejected) {
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
const main = { exports: {} };
script.runInThisContext()(main.exports, createRequire(file), main, file, dir);
