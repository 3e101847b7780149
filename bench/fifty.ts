// 50 sheds on one server: `shed list` against `docker ps`, and shed-server's resident memory with 0
// and with 50 sheds. A server of its own, so its memory is not what the other parts left behind.
import { type Ctx, shedOn } from "./context.js";
import { type BenchServer, inBatches, must, rssMb, run, SHED } from "./harness.js";
import { type Row, rowOf } from "./table.js";

export const N_SHEDS = 50;

export async function fifty(ctx: Ctx, server: BenchServer, runs: number): Promise<Row[]> {
  const shed = shedOn(server);
  await shed(["list"]); // the server has answered a request: its API is loaded
  const rssIdle = rssMb(server.pid);
  const names = Array.from({ length: N_SHEDS }, (_, i) => `bench-many-${i}`);
  ctx.line(`fifty: creating ${N_SHEDS} sheds (no hooks), 5 at a time`);
  try {
    await inBatches(names, 5, (name) => shed(["create", name]));
    // Correct before timed: every shed listed, each running.
    const listed = JSON.parse((await shed(["--json", "list"], false)).stdout) as {
      sheds: { name: string; status: string }[];
    };
    const running = new Set(listed.sheds.filter((s) => s.status === "running").map((s) => s.name));
    const missing = names.filter((n) => !running.has(n));
    if (missing.length > 0) throw new Error(`shed list left out or misreported ${missing.join(", ")}`);
    ctx.line("fifty: measuring");
    const list: number[] = [];
    const ps: number[] = [];
    for (let i = 0; i < runs; i++) {
      list.push((await shed(["list"])).ms);
      ps.push((await must(["docker", "ps"], { quiet: true })).ms);
    }
    const rss = rssMb(server.pid);
    return [
      rowOf("list", `\`shed list\` with ${N_SHEDS} sheds (Docker: \`docker ps\`)`, { shed: list, docker: ps }, [
        { vs: "docker", max: 2.5 },
      ]),
      rowOf("server_rss_idle", "shed-server resident memory, 0 sheds", { shed: [rssIdle] }, [], "MB"),
      rowOf(
        "server_rss",
        `shed-server resident memory, ${N_SHEDS} sheds`,
        { shed: [rss] },
        [{ vs: "value", max: 100 }],
        "MB",
      ),
    ];
  } finally {
    await inBatches(names, 5, (name) => run([SHED, "delete", name, "--force"], { env: server.env, quiet: true }));
  }
}
