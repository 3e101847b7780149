// Shed beside the reference dev-container CLI and plain Docker, in one run with the systems
// alternating (see bench/run.sh). Prints a table of medians, ratios and issue 12's targets, and writes
// bench/results.json; the README carries the latest full run's table.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { emptyCreate, exec, startup } from "./basics.js";
import type { Ctx } from "./context.js";
import { fifty } from "./fifty.js";
import { type BenchServer, inBatches, ROOT, rssMb, run, SHED, startBenchServer } from "./harness.js";
import { hookOverhead, streaming } from "./hooks.js";
import { lifecycle } from "./lifecycle.js";
import { BENCH_LABEL, DEVCONTAINER_VERSION, removeLabelled } from "./peers.js";
import { markdownTable, type Row, rowOf } from "./table.js";

const PARTS = ["version", "exec", "create", "lifecycle", "hooks", "stream", "fifty"] as const;
const quick = process.argv.includes("--quick");
const onlyArg = process.argv.indexOf("--only");
/** `--only PART` runs one part (one of PARTS). */
const only = onlyArg >= 0 ? process.argv[onlyArg + 1] : undefined;
if (only !== undefined && !(PARTS as readonly string[]).includes(only)) {
  process.stderr.write(`bench: --only takes one of ${PARTS.join(", ")}, not ${JSON.stringify(only)}\n`);
  process.exit(2);
}
const part = (name: (typeof PARTS)[number]) => only === undefined || only === name;
const N = quick
  ? { version: 10, exec: 6, create: 2, lifecycle: 2, hooks: 2, streamMb: 50, stream: 1, list: 5 }
  : { version: 30, exec: 30, create: 7, lifecycle: 7, hooks: 5, streamMb: 200, stream: 5, list: 15 };

const line = (s: string) => process.stdout.write(`${s}\n`);
const git = (args: string[]) => spawnSync("git", ["-C", ROOT, ...args], { encoding: "utf8" }).stdout.trim();
const meta = {
  date: new Date().toISOString(),
  quick,
  only: only ?? null,
  commit: git(["rev-parse", "HEAD"]),
  // dist/ is built from the working tree: uncommitted changes under src/ are in what was measured.
  uncommitted_src: git(["status", "--porcelain", "--", "src"]).split("\n").filter(Boolean),
  cores: cpus().length,
  load_before: loadavg(),
  node: process.version,
  docker: spawnSync("docker", ["version", "--format", "{{.Server.Version}}"], { encoding: "utf8" }).stdout.trim(),
  devcontainer_cli: DEVCONTAINER_VERSION,
};
const runId = Math.random().toString(16).slice(2, 8);
const tmp = mkdtempSync(join(tmpdir(), `shed-bench-${runId}-`));
const servers: BenchServer[] = [];

let cleaning: Promise<void> | undefined;
/** Removes all the run made, also after a failure or Ctrl-C: sheds through Shed, then by label. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    let leftovers = 0;
    for (const server of servers) {
      const listed = await run([SHED, "--json", "list"], { env: server.env });
      if (listed.code === 0) {
        const names = (JSON.parse(listed.stdout) as { sheds: { name: string }[] }).sheds.map((s) => s.name);
        leftovers += names.length;
        await inBatches(names, 5, (name) => run([SHED, "delete", name, "--force"], { env: server.env, quiet: true }));
      }
      await server.stop();
      leftovers += await removeLabelled(`dev.shed.server-id=${server.serverId}`);
      rmSync(server.dir, { recursive: true, force: true });
    }
    leftovers += await removeLabelled(`${BENCH_LABEL}=${runId}`);
    rmSync(tmp, { recursive: true, force: true });
    if (leftovers > 0) line(`cleanup: removed ${leftovers} sheds, containers or volumes a part left behind`);
  })();
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  // `on`, not `once`: tsx relays the signal the process group already got, and a second one must not kill.
  process.on(signal, () => {
    if (cleaning) return;
    line(`bench: ${signal}, cleaning up`);
    void cleanup()
      .catch((err: Error) => line(`cleanup failed: ${err.stack ?? err}`))
      .finally(() => process.exit(130));
  });
}

const rows: Row[] = [];
try {
  const server = await startBenchServer();
  servers.push(server);
  const ctx: Ctx = { runId, tmp, quick, server, line };
  if (part("version")) rows.push(...(await startup(ctx, N.version)));
  if (part("exec")) rows.push(...(await exec(ctx, N.exec)));
  if (part("create")) rows.push(...(await emptyCreate(ctx, N.create)));
  if (part("lifecycle")) rows.splice(0, 0, ...(await lifecycle(ctx, N.lifecycle)));
  if (part("hooks")) rows.push(...(await hookOverhead(ctx, N.hooks)));
  if (part("stream")) rows.push(...(await streaming(ctx, N.streamMb, N.stream)));
  if (only === undefined) {
    const after = "shed-server resident memory after the parts above (streaming included)";
    rows.push(rowOf("server_rss_after", after, { shed: [rssMb(server.pid)] }, [], "MB"));
  }
  if (part("fifty")) {
    const many = await startBenchServer();
    servers.push(many);
    rows.push(...(await fifty(ctx, many, N.list)));
  }
} finally {
  await cleanup();
}

const table = markdownTable(rows, DEVCONTAINER_VERSION);
const dirty =
  meta.uncommitted_src.length > 0 ? ` + uncommitted changes in ${meta.uncommitted_src.length} src files` : "";
line(
  `\n${meta.date.slice(0, 10)}, commit ${meta.commit.slice(0, 7)}${dirty}, ${meta.cores} cores, Docker ${meta.docker}`,
);
line(
  `load average before ${meta.load_before.map((l) => l.toFixed(2)).join(" ")}, after ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}\n`,
);
line(table);
if (!quick && !only) {
  const results = { ...meta, load_after: loadavg(), rows, table };
  writeFileSync(join(import.meta.dirname, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  line("\nwrote bench/results.json");
}
