// Bundles shed-agent (the process inside each VM) into dist/agent/, self-contained for the VM image:
// shed-agent.cjs plus @lydell/node-pty and its prebuilt binaries for linux x64 and arm64 under
// dist/agent/node_modules/ (node-pty's requireBinary loads "@lydell/node-pty-<platform>-<arch>").
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const PTY = "@lydell/node-pty";
const ARCHES = ["x64", "arm64"];

export async function buildAgent(common) {
  rmSync("dist/agent", { recursive: true, force: true });
  await build({
    ...common,
    format: "cjs",
    sourcemap: false,
    entryPoints: ["src/agent/main.ts"],
    outfile: "dist/agent/shed-agent.cjs",
    external: [...common.external, PTY],
  });
  const { version } = JSON.parse(readFileSync(`node_modules/${PTY}/package.json`, "utf8"));
  cpSync(`node_modules/${PTY}`, `dist/agent/node_modules/${PTY}`, { recursive: true });
  for (const arch of ARCHES) {
    const name = `${PTY}-linux-${arch}`;
    cpSync(platformPackage(name, version), `dist/agent/node_modules/${name}`, { recursive: true });
  }
}

/**
 * npm installs only this machine's binary package; the other architecture's comes from the
 * registry once (npm pack checks its integrity) and is kept in node_modules/.cache.
 */
function platformPackage(name, version) {
  if (existsSync(`node_modules/${name}/package.json`)) return `node_modules/${name}`;
  const cache = join("node_modules/.cache/shed-agent", `${name.replace("/", "+")}@${version}`);
  if (!existsSync(join(cache, "package/package.json"))) {
    rmSync(cache, { recursive: true, force: true });
    mkdirSync(cache, { recursive: true });
    execFileSync("npm", ["pack", "--silent", "--pack-destination", cache, `${name}@${version}`], { stdio: "ignore" });
    const tgz = readdirSync(cache).find((f) => f.endsWith(".tgz"));
    if (!tgz) throw new Error(`npm pack ${name}@${version} left no archive`);
    execFileSync("tar", ["-xzf", tgz], { cwd: cache });
  }
  return join(cache, "package");
}
