// Measures what Shed adds on top of Docker. See bench/run.sh; figures go to README.md.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inBatches, makeRepo, median, must, rssMb, run, SHED, startBenchServer } from "./harness.js";

const quick = process.argv.includes("--quick");
const onlyArg = process.argv.indexOf("--only");
/** `--only exec|create|hooks|stream|fifty` runs one part. */
const only = onlyArg >= 0 ? process.argv[onlyArg + 1] : undefined;
const part = (name: string) => only === undefined || only === name;
const N_EXEC = quick ? 10 : 30;
const N_CREATE = quick ? 3 : 7;
const N_HOOKS = quick ? 2 : 5;
const STREAM_MB = quick ? 50 : 200;
const N_STREAM = quick ? 1 : 5;
const N_SHEDS = 50;
const N_LIST = quick ? 5 : 15;

const results: Record<string, unknown> = { date: new Date().toISOString(), quick };
const line = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

const server = await startBenchServer();
const env = server.env;
const shed = (args: string[], quiet = true) => must([SHED, ...args], { env, quiet });
const docker = (args: string[]) => must(["docker", ...args], { quiet: true });

try {
  // --- exec -------------------------------------------------------------
  if (part("exec")) {
    line("exec: creating bench-exec");
    await shed(["create", "bench-exec"]);
    line("exec: measuring");
    await shed(["exec", "bench-exec", "--", "true"]); // opens the multiplexed connection
    const shedExec: number[] = [];
    const dockerExec: number[] = [];
    for (let i = 0; i < N_EXEC; i++) {
      dockerExec.push((await docker(["exec", "shed-bench-exec", "true"])).ms);
      shedExec.push((await shed(["exec", "bench-exec", "--", "true"])).ms);
    }
    const cfg = join(server.dir, "cli", "ssh_config");
    const coldExec: number[] = [];
    for (let i = 0; i < Math.ceil(N_EXEC / 3); i++) {
      await run(["ssh", "-F", cfg, "-O", "exit", "-l", "bench-exec", "shed.bench"], { quiet: true });
      coldExec.push((await shed(["exec", "bench-exec", "--", "true"])).ms);
    }
    const exec = {
      shed_exec_ms: median(shedExec),
      docker_exec_ms: median(dockerExec),
      ratio: median(shedExec) / median(dockerExec),
      cold_shed_exec_ms: median(coldExec),
      cold_ratio: median(coldExec) / median(dockerExec),
      runs: N_EXEC,
    };
    results.exec = exec;
    line(
      `exec: shed exec ${fmt(exec.shed_exec_ms)} vs docker exec ${fmt(exec.docker_exec_ms)} = ${exec.ratio.toFixed(2)}x (target <= 1.3x)`,
    );
    line(`      first exec on a new connection: ${fmt(exec.cold_shed_exec_ms)} = ${exec.cold_ratio.toFixed(2)}x`);
    await shed(["delete", "bench-exec", "--force"]);
  }

  // --- create -----------------------------------------------------------
  if (part("create")) {
    const shedCreate: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < N_CREATE; i++) {
      const t0 = performance.now();
      await docker(["volume", "create", `bench-floor-${i}`]);
      await docker([
        "run",
        "-d",
        "--init",
        "--name",
        `bench-floor-${i}`,
        "-v",
        `bench-floor-${i}:/workspace`,
        "shed-base:latest",
        "sleep",
        "infinity",
      ]);
      await docker(["exec", `bench-floor-${i}`, "true"]);
      floor.push(performance.now() - t0);
      await docker(["rm", "-f", `bench-floor-${i}`]);
      await docker(["volume", "rm", `bench-floor-${i}`]);
      shedCreate.push((await shed(["create", `bench-create-${i}`])).ms);
      await shed(["delete", `bench-create-${i}`, "--force"]);
    }
    const create = {
      shed_create_ms: median(shedCreate),
      docker_floor_ms: median(floor),
      ratio: median(shedCreate) / median(floor),
      runs: N_CREATE,
    };
    results.create = create;
    line(
      `create: shed create ${fmt(create.shed_create_ms)} vs docker floor ${fmt(create.docker_floor_ms)} = ${create.ratio.toFixed(2)}x (target <= 1.5x)`,
    );
  }

  // --- hook overhead ----------------------------------------------------
  if (part("hooks")) {
    const noop = "#!/bin/sh\ntrue\n";
    const withHooks = gitRepo({
      ".shed/provision.yaml": "hooks:\n  install: h/install.sh\n  startup: h/startup.sh\n  shutdown: h/shutdown.sh\n",
      "h/install.sh": noop,
      "h/startup.sh": noop,
      "h/shutdown.sh": noop,
    });
    const without = gitRepo({ README: "no provisioning\n" });
    const createHooks: number[] = [];
    const createNone: number[] = [];
    const stopHooks: number[] = [];
    const stopNone: number[] = [];
    for (let i = 0; i < N_HOOKS; i++) {
      createNone.push((await shed(["create", `bench-none-${i}`, "--repo", without])).ms);
      createHooks.push((await shed(["create", `bench-hooks-${i}`, "--repo", withHooks])).ms);
      stopNone.push((await shed(["stop", `bench-none-${i}`])).ms);
      stopHooks.push((await shed(["stop", `bench-hooks-${i}`])).ms);
      await shed(["delete", `bench-none-${i}`, "--force"]);
      await shed(["delete", `bench-hooks-${i}`, "--force"]);
    }
    const createDiff = median(createHooks) - median(createNone);
    const hooks = {
      create_with_hooks_ms: median(createHooks),
      create_without_ms: median(createNone),
      create_overhead_ms: createDiff,
      // Create runs two of the three hooks (install, startup) plus PATH capture.
      per_hook_on_create_ms: createDiff / 2,
      stop_with_shutdown_hook_ms: median(stopHooks),
      stop_without_ms: median(stopNone),
      shutdown_hook_overhead_ms: median(stopHooks) - median(stopNone),
      runs: N_HOOKS,
    };
    results.hooks = hooks;
    line(
      `hooks: create with 3 no-op hooks ${fmt(hooks.create_with_hooks_ms)} vs none ${fmt(hooks.create_without_ms)}: +${fmt(createDiff)}, ${fmt(hooks.per_hook_on_create_ms)} per hook run (target < 300 ms)`,
    );
    line(`       stop with a no-op shutdown hook: +${fmt(hooks.shutdown_hook_overhead_ms)}`);
  }

  // --- log streaming ----------------------------------------------------
  if (part("stream")) {
    const bytes = STREAM_MB * 1_000_000;
    const printer = `#!/bin/sh\nyes 'a line of hook output, about sixty bytes long ..........' | head -c ${bytes}\n`;
    const streamRepo = gitRepo({ ".shed/provision.yaml": "hooks:\n  startup: p.sh\n", "p.sh": printer });
    await shed(["create", "bench-stream", "--repo", streamRepo, "--no-provision"]);
    // Alternating runs, medians: one run of each swings by a third on a 2-core machine.
    const viaShedRuns: number[] = [];
    const viaDockerRuns: number[] = [];
    for (let i = 0; i < N_STREAM; i++) {
      viaShedRuns.push((await shed(["provision", "bench-stream", "--hook", "startup"])).ms);
      viaDockerRuns.push(
        (
          await docker([
            "exec",
            "shed-bench-stream",
            "sh",
            "-c",
            `yes 'a line of hook output, about sixty bytes long ..........' | head -c ${bytes}`,
          ])
        ).ms,
      );
    }
    const viaShed = median(viaShedRuns);
    const viaDocker = median(viaDockerRuns);
    const stream = {
      megabytes: STREAM_MB,
      shed_mb_per_s: STREAM_MB / (viaShed / 1000),
      docker_exec_mb_per_s: STREAM_MB / (viaDocker / 1000),
      ratio: viaDocker / viaShed,
      runs: N_STREAM,
    };
    results.stream = stream;
    line(
      `stream: ${STREAM_MB} MB hook output ${stream.shed_mb_per_s.toFixed(0)} MB/s through shed vs ${stream.docker_exec_mb_per_s.toFixed(0)} MB/s docker exec = ${stream.ratio.toFixed(2)}x (target >= 0.5x)`,
    );
    await shed(["delete", "bench-stream", "--force"]);
  }
  // --- 50 sheds on one server --------------------------------------------
  if (part("fifty")) {
    const rssIdle = rssMb(server.pid);
    const names = Array.from({ length: N_SHEDS }, (_, i) => `bench-many-${i}`);
    line(`fifty: creating ${N_SHEDS} sheds (no hooks), 5 at a time`);
    try {
      await inBatches(names, 5, (name) => shed(["create", name]));
      // Correct before timed: every shed listed, each running.
      const listed = JSON.parse((await shed(["--json", "list"], false)).stdout) as {
        sheds: { name: string; status: string }[];
      };
      const running = new Set(listed.sheds.filter((s) => s.status === "running").map((s) => s.name));
      const missing = names.filter((n) => !running.has(n));
      if (missing.length > 0) throw new Error(`shed list left out or misreported ${missing.join(", ")}`);
      const listMs: number[] = [];
      for (let i = 0; i < N_LIST; i++) listMs.push((await shed(["list"])).ms);
      const fifty = {
        sheds: N_SHEDS,
        list_ms: median(listMs),
        server_rss_idle_mb: rssIdle,
        server_rss_mb: rssMb(server.pid),
        runs: N_LIST,
      };
      results.fifty = fifty;
      line(
        `fifty: shed list of ${N_SHEDS} sheds ${fmt(fifty.list_ms)}; server memory ${fifty.server_rss_mb.toFixed(0)} MB (${fifty.server_rss_idle_mb.toFixed(0)} MB before the sheds)`,
      );
    } finally {
      await inBatches(names, 5, (name) => run([SHED, "delete", name, "--force"], { env, quiet: true }));
    }
  }
} finally {
  server.stop();
}
if (!only) writeFileSync(join(import.meta.dirname, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
if (!only) line("wrote bench/results.json");

function gitRepo(files: Record<string, string>): string {
  const dir = makeRepo(mkdtempSync(join(tmpdir(), "shed-bench-repo-")), files);
  const git = (args: string[]) => spawnSync("git", ["-C", dir, ...args], { stdio: "ignore" });
  git(["init", "-q", "-b", "main"]);
  git(["add", "."]);
  git(["-c", "user.email=b@shed.invalid", "-c", "user.name=bench", "commit", "-qm", "bench"]);
  return dir;
}
