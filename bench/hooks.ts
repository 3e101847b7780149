// What hooks cost over none, and how fast a hook's output gets to the CLI.
import { type Ctx, shedOn } from "./context.js";
import { docker, gitRepo } from "./peers.js";
import { type Row, rowOf } from "./table.js";

export async function hookOverhead(ctx: Ctx, runs: number): Promise<Row[]> {
  const shed = shedOn(ctx.server);
  const noop = "#!/bin/sh\ntrue\n";
  const withHooks = gitRepo(ctx.tmp, {
    ".shed/provision.yaml": "hooks:\n  install: h/install.sh\n  startup: h/startup.sh\n  shutdown: h/shutdown.sh\n",
    "h/install.sh": noop,
    "h/startup.sh": noop,
    "h/shutdown.sh": noop,
  });
  const without = gitRepo(ctx.tmp, { README: "no provisioning\n" });
  const createHooks: number[] = [];
  const createNone: number[] = [];
  const stopHooks: number[] = [];
  const stopNone: number[] = [];
  for (let i = 0; i < runs; i++) {
    ctx.line(`hooks: run ${i + 1} of ${runs}`);
    createNone.push((await shed(["create", `bench-none-${i}`, "--repo", without])).ms);
    createHooks.push((await shed(["create", `bench-hooks-${i}`, "--repo", withHooks])).ms);
    stopNone.push((await shed(["stop", `bench-none-${i}`])).ms);
    stopHooks.push((await shed(["stop", `bench-hooks-${i}`])).ms);
    await shed(["delete", `bench-none-${i}`, "--force"]);
    await shed(["delete", `bench-hooks-${i}`, "--force"]);
  }
  // Differences of alternating pairs, so a slow moment weighs on both sides of a pair.
  const diff = (a: number[], b: number[]) => a.map((x, i) => x - (b[i] as number));
  // Create runs two of the three hooks (install, startup) plus PATH capture.
  const perHook = diff(createHooks, createNone).map((d) => d / 2);
  return [
    rowOf(
      "hook_overhead_create",
      "hook overhead: create with 3 no-op hooks minus none, per hook run",
      { shed: perHook },
      [{ vs: "value", max: 300, source: "earlier target" }],
    ),
    rowOf("hook_overhead_stop", "hook overhead: stop with a no-op shutdown hook minus without", {
      shed: diff(stopHooks, stopNone),
    }),
  ];
}

export async function streaming(ctx: Ctx, megabytes: number, runs: number): Promise<Row[]> {
  const shed = shedOn(ctx.server);
  const bytes = megabytes * 1_000_000;
  const print = `yes 'a line of hook output, about sixty bytes long ..........' | head -c ${bytes}`;
  const repo = gitRepo(ctx.tmp, {
    ".shed/provision.yaml": "hooks:\n  startup: p.sh\n",
    "p.sh": `#!/bin/sh\n${print}\n`,
  });
  await shed(["create", "bench-stream", "--repo", repo, "--no-provision"]);
  try {
    const viaShed: number[] = [];
    const viaDocker: number[] = [];
    for (let i = 0; i < runs; i++) {
      ctx.line(`stream: run ${i + 1} of ${runs}`);
      viaShed.push(megabytes / ((await shed(["provision", "bench-stream", "--hook", "startup"])).ms / 1000));
      viaDocker.push(megabytes / ((await docker(["exec", "shed-bench-stream", "sh", "-c", print])).ms / 1000));
    }
    return [
      rowOf(
        "stream",
        `hook output streaming: a hook printing ${megabytes} MB, through to the CLI (Docker: \`docker exec\` printing the same)`,
        { shed: viaShed, docker: viaDocker },
        [{ vs: "docker", min: 0.9 }],
        "MB/s",
      ),
    ];
  } finally {
    await shed(["delete", "bench-stream", "--force"]);
  }
}
