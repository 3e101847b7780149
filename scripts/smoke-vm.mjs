#!/usr/bin/env node
// Usage: npm run smoke:firecracker | npm run smoke:vz   (node scripts/smoke-vm.mjs BACKEND)
// (qemu is accepted too: it runs the same steps here, under TCG, which is how this script itself is checked)
//
// The real-hypervisor smoke test of one VM backend, outside `npm test` because it needs what
// this project's CI machines lack: Firecracker needs Linux with /dev/kvm, the firecracker binary
// and the bridge of `sudo shed-server setup`; VZ needs macOS on Apple silicon with vfkit, and an
// arm64 image (`npm run build-vm-image -- --arch arm64`). Run it there, built (`npm run build`).
//
// It starts a shed-server of its own (a temporary data_dir and CLI config) with only that backend
// enabled, then through the packaged CLI: create from examples/hello (install and startup hooks),
// exec, a file written in the workspace, stop, start (the file is still there), exec, delete.
// Each step prints PASS or FAIL; the exit code is 0 only when every step passed. Where the host
// cannot run the backend, the server refuses to start naming what is missing: this prints that
// and exits 2. It never counts as passed.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const backend = process.argv[2];
if (!["firecracker", "vz", "qemu"].includes(backend)) {
  console.error("usage: node scripts/smoke-vm.mjs firecracker|vz|qemu");
  process.exit(64);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(join(tmpdir(), `shed-smoke-${backend}-`));
const serverConfig = join(work, "server.yaml");
writeFileSync(
  serverConfig,
  [
    `name: smoke`,
    `http_port: 0`,
    `ssh_port: 0`,
    `data_dir: ${JSON.stringify(join(work, "data"))}`,
    `enabled_backends: [${backend}]`,
    `default_backend: ${backend}`,
    `start_timeout: 120s`,
    "",
  ].join("\n"),
);
const env = { ...process.env, SHED_CONFIG: join(work, "cli", "config.yaml"), XDG_RUNTIME_DIR: work };
const name = `smoke-${process.pid}`;
let failed = 0;

function step(what, argv, check) {
  const r = run(argv, { timeout: 10 * 60_000 });
  const ok = r.status === 0 && (check ? check(r.stdout) : true);
  console.log(`${ok ? "PASS" : "FAIL"} ${what}`);
  if (!ok) {
    failed++;
    process.stdout.write(
      `  exit ${r.status ?? r.signal}\n  ${(r.stdout + r.stderr).trim().split("\n").join("\n  ")}\n`,
    );
  }
  return ok;
}

const server = spawn(process.execPath, [join(root, "dist", "shed-server.mjs"), "serve", "--config", serverConfig], {
  env,
  stdio: ["ignore", "pipe", "pipe"],
});
let out = "";
let err = "";
server.stderr.on("data", (c) => {
  err += c;
});
const ready = await new Promise((resolve) => {
  server.stdout.on("data", (c) => {
    out += c;
    const line = out.split("\n").find((l) => l.includes('"ready":true'));
    if (line) resolve(JSON.parse(line));
  });
  server.on("exit", () => resolve(undefined));
});
if (!ready) {
  console.error(`NOT RUN: this host cannot run the ${backend} backend; shed-server says:\n${err.trim()}`);
  rmSync(work, { recursive: true, force: true });
  process.exit(2);
}

const shed = (...args) => [join(root, "bin", "shed"), ...args];
const run = (argv, opts = {}) => spawnSync(argv[0], argv.slice(1), { env, encoding: "utf8", ...opts });
try {
  const token = readFileSync(join(work, "data", "api_token"), "utf8");
  const add = run(
    shed("server", "add", "127.0.0.1", "--port", String(ready.http_port), "--name", "smoke", "--token-file", "-"),
    {
      input: token,
    },
  );
  if (add.status !== 0) throw new Error(`shed server add failed: ${add.stderr}`);
  const repo = join(work, "hello");
  cpSync(join(root, "examples", "hello"), repo, { recursive: true });
  const git = (...a) => spawnSync("git", ["-C", repo, ...a], { encoding: "utf8" });
  git("init", "-q", "-b", "main");
  git("add", ".");
  git("-c", "user.email=smoke@shed.invalid", "-c", "user.name=smoke", "commit", "-qm", "hello");

  if (
    step(
      `create ${name} --backend ${backend} (install and startup hooks)`,
      shed("create", name, "--backend", backend, "--repo", repo),
    )
  ) {
    step("exec: the hook-installed command runs", shed("exec", name, "--", "hello"));
    step("exec: uname shows a Linux guest", shed("exec", name, "--", "uname", "-sm"), (o) => o.includes("Linux"));
    step("a file written in the workspace", shed("exec", name, "--", "sh", "-c", "echo kept > /workspace/smoke.txt"));
    step("stop", shed("stop", name));
    step("start (startup hook again)", shed("start", name));
    step(
      "the file survived stop and start",
      shed("exec", name, "--", "cat", "/workspace/smoke.txt"),
      (o) => o.trim() === "kept",
    );
    step("delete", shed("delete", name, "--force"));
    step("gone from the list", shed("--json", "list"), (o) => !o.includes(`"${name}"`));
  }
} catch (e) {
  failed++;
  console.log(`FAIL ${e.message}`);
} finally {
  run(shed("delete", name, "--force"));
  server.kill("SIGTERM");
  await new Promise((r) => server.on("exit", r));
  rmSync(work, { recursive: true, force: true });
}
console.log(failed === 0 ? `smoke ${backend}: all steps passed` : `smoke ${backend}: ${failed} step(s) failed`);
process.exit(failed === 0 ? 0 : 1);
