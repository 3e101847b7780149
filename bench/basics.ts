// exec, the create of an empty shed, and CLI start-up, each beside its peers, alternating.
import { join } from "node:path";
import { type Ctx, shedOn } from "./context.js";
import { must, run, SHED } from "./harness.js";
import {
  DEVCONTAINER,
  devcontainerExec,
  devcontainerFolder,
  devcontainerUp,
  docker,
  floorCreate,
  warmDevcontainer,
} from "./peers.js";
import { type Row, rowOf, type Samples } from "./table.js";

export async function exec(ctx: Ctx, runs: number): Promise<Row[]> {
  const shed = shedOn(ctx.server);
  ctx.line("exec: creating bench-exec and a dev container");
  await shed(["create", "bench-exec"]);
  await warmDevcontainer(ctx.tmp, ctx.runId);
  const folder = devcontainerFolder(ctx.tmp, ctx.runId, false);
  const up = await devcontainerUp(folder);
  try {
    ctx.line("exec: measuring");
    await shed(["exec", "bench-exec", "--", "true"]); // opens the multiplexed connection
    await devcontainerExec(folder, ["true"]);
    const warm: Required<Samples> = { shed: [], devcontainer: [], docker: [] };
    for (let i = 0; i < runs; i++) {
      warm.shed.push((await shed(["exec", "bench-exec", "--", "true"])).ms);
      warm.devcontainer.push((await devcontainerExec(folder, ["true"])).ms);
      warm.docker.push((await docker(["exec", "shed-bench-exec", "true"])).ms);
    }
    // The first command after the connection went away: what a command pays after a quiet spell.
    const cfg = join(ctx.server.dir, "cli", "ssh_config");
    const cold: Required<Pick<Samples, "shed" | "docker">> = { shed: [], docker: [] };
    for (let i = 0; i < Math.ceil(runs / 3); i++) {
      await run(["ssh", "-F", cfg, "-O", "exit", "-l", "bench-exec", "shed.bench"], { quiet: true });
      cold.shed.push((await shed(["exec", "bench-exec", "--", "true"])).ms);
      cold.docker.push((await docker(["exec", "shed-bench-exec", "true"])).ms);
    }
    return [
      rowOf("exec", "exec `true`, multiplexed SSH connection open (Docker: `docker exec` into the shed)", warm, [
        { vs: "docker", max: 1.1 },
      ]),
      rowOf("exec_cold", "the same, first command on a new SSH connection", cold),
    ];
  } finally {
    await run([SHED, "delete", "bench-exec", "--force"], { env: ctx.server.env, quiet: true });
    await run(["docker", "rm", "-f", "-v", up.containerId], { quiet: true });
  }
}

export async function emptyCreate(ctx: Ctx, runs: number): Promise<Row[]> {
  const shed = shedOn(ctx.server);
  const s: Required<Pick<Samples, "shed" | "docker">> = { shed: [], docker: [] };
  for (let i = 0; i < runs; i++) {
    ctx.line(`create: run ${i + 1} of ${runs}`);
    s.shed.push((await shed(["create", `bench-empty-${i}`])).ms);
    const floor = `bench-${ctx.runId}-empty-${i}`;
    s.docker.push(await floorCreate(ctx.runId, floor, [["true"]]));
    await shed(["delete", `bench-empty-${i}`, "--force"]);
    await docker(["rm", "-f", "-v", floor]);
    await docker(["volume", "rm", floor]);
  }
  return [
    rowOf("create_empty", "create of an empty shed (Docker: volume, run, one exec)", s, [
      { vs: "docker", max: 1.5, source: "earlier target" },
    ]),
  ];
}

export async function startup(ctx: Ctx, runs: number): Promise<Row[]> {
  const s: Required<Samples> = { shed: [], devcontainer: [], docker: [] };
  // `shed version` asks no server: it is the CLI's own start-up.
  const env = ctx.server.env;
  for (let i = 0; i < runs; i++) {
    s.shed.push((await must([SHED, "version"], { env, quiet: true })).ms);
    s.devcontainer.push((await must([DEVCONTAINER, "--version"], { quiet: true })).ms);
    s.docker.push((await must(["node", "-e", "0"], { quiet: true })).ms);
  }
  return [
    rowOf("version", "CLI start-up: `shed version`, `devcontainer --version` (floor: `node -e 0`)", s, [
      { vs: "docker", max: 1.5 },
    ]),
  ];
}
