// The VM path's own figures (npm run bench -- --vm): a QEMU shed's create, stop and start, and exec in it,
// beside the same on Docker. Under software emulation (no /dev/kvm) these are what a user here waits;
// figures go to README.md.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { median, must, run, SHED, startBenchServer } from "./harness.js";

const quick = process.argv.includes("--quick");
const N = quick ? 2 : 3;
const N_EXEC = quick ? 10 : 20;
const line = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const server = await startBenchServer("enabled_backends: [docker, qemu]\nstop_timeout: 30s\nstart_timeout: 240s\n");
const shed = (args: string[]) => must([SHED, ...args], { env: server.env, quiet: true });
const results: Record<string, unknown> = { date: new Date().toISOString(), quick, accel: "tcg" };
try {
  for (const backend of ["qemu", "docker"] as const) {
    const create: number[] = [];
    const stop: number[] = [];
    const start: number[] = [];
    const exec: number[] = [];
    for (let i = 0; i < N; i++) {
      const name = `bench-${backend}-${i}`;
      line(`${backend}: create, stop, start ${name}`);
      create.push((await shed(["create", name, "--backend", backend])).ms);
      if (i === 0) {
        await shed(["exec", name, "--", "true"]); // opens the multiplexed connection
        for (let j = 0; j < N_EXEC; j++) exec.push((await shed(["exec", name, "--", "true"])).ms);
      }
      stop.push((await shed(["stop", name])).ms);
      start.push((await shed(["start", name])).ms);
      await run([SHED, "delete", name, "--force"], { env: server.env, quiet: true });
    }
    results[backend] = {
      create_ms: median(create),
      stop_ms: median(stop),
      start_ms: median(start),
      exec_ms: median(exec),
      runs: N,
      exec_runs: N_EXEC,
    };
    line(
      `${backend}: create ${fmt(median(create))}, stop ${fmt(median(stop))}, start ${fmt(median(start))}, exec true ${median(exec).toFixed(0)} ms`,
    );
  }
} finally {
  server.stop();
}
if (!quick) writeFileSync(join(import.meta.dirname, "vm-results.json"), `${JSON.stringify(results, null, 2)}\n`);
