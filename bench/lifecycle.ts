// A repo with an install and a startup step through its whole life, on the three systems in turn:
// create, stop, start, delete. Each run checks (untimed) that the steps ran as often as they should.
import { rmSync } from "node:fs";
import { type Ctx, shedOn } from "./context.js";
import {
  devcontainerFolder,
  devcontainerUp,
  docker,
  exists,
  expectSteps,
  floorCreate,
  floorDelete,
  gitRepo,
  hookedRepoFiles,
  INSTALL_SCRIPT,
  isRunning,
  STARTUP_SCRIPT,
  warmDevcontainer,
} from "./peers.js";
import { type Row, rowOf, type Samples } from "./table.js";

export async function lifecycle(ctx: Ctx, runs: number): Promise<Row[]> {
  const shed = shedOn(ctx.server);
  const repo = gitRepo(ctx.tmp, hookedRepoFiles(ctx.runId));
  await warmDevcontainer(ctx.tmp, ctx.runId);
  const create: Required<Samples> = { shed: [], devcontainer: [], docker: [] };
  const stop: Samples = { shed: [], docker: [] };
  const start: Required<Samples> = { shed: [], devcontainer: [], docker: [] };
  const del: Samples = { shed: [], docker: [] };
  const floorSteps = [[`/repo/${INSTALL_SCRIPT}`], [`/repo/${STARTUP_SCRIPT}`]];

  for (let i = 0; i < runs; i++) {
    ctx.line(`lifecycle: run ${i + 1} of ${runs}`);
    const name = `bench-life-${i}`;
    const box = `shed-${name}`;
    const floor = `bench-${ctx.runId}-floor-${i}`;
    const folder = devcontainerFolder(ctx.tmp, ctx.runId, true);

    create.shed.push((await shed(["create", name, "--repo", repo])).ms);
    const up = await devcontainerUp(folder);
    create.devcontainer.push(up.ms);
    create.docker.push(await floorCreate(ctx.runId, floor, floorSteps, repo));
    await expectSteps("shed create", box, 1, 1);
    await expectSteps("devcontainer up", up.containerId, 1, 1);
    await expectSteps("the Docker floor", floor, 1, 1);

    stop.shed?.push((await shed(["stop", name])).ms);
    stop.docker?.push((await docker(["stop", floor])).ms);
    await docker(["stop", up.containerId]); // the dev-container CLI has no stop: untimed
    for (const c of [box, floor]) if (await isRunning(c)) throw new Error(`${c} still runs after its stop`);

    start.shed.push((await shed(["start", name])).ms);
    start.devcontainer.push((await devcontainerUp(folder)).ms); // `up` again starts it and runs postStartCommand
    const t0 = performance.now();
    await docker(["start", floor]);
    await docker(["exec", floor, `/repo/${STARTUP_SCRIPT}`]);
    start.docker.push(performance.now() - t0);
    await expectSteps("shed start", box, 1, 2);
    await expectSteps("devcontainer up again", up.containerId, 1, 2);
    await expectSteps("the Docker floor's start", floor, 1, 2);

    del.shed?.push((await shed(["delete", name, "--force"])).ms);
    del.docker?.push(await floorDelete(floor));
    await docker(["rm", "-f", "-v", up.containerId]); // no delete in the dev-container CLI either
    rmSync(folder, { recursive: true, force: true });
    for (const c of [box, floor]) if (await exists(c)) throw new Error(`${c} still exists after its delete`);
  }

  return [
    rowOf(
      "create_with_hooks",
      "create, repo with an install and a startup step (Docker: volume, run, exec of both)",
      create,
      [
        { vs: "devcontainer", max: 0.6 },
        { vs: "docker", max: 1.5 },
      ],
    ),
    rowOf("stop", "stop, no shutdown hook (Docker: `docker stop`)", stop, [{ vs: "docker", max: 1.3 }]),
    rowOf(
      "start",
      "start with the startup hook (devcontainer: `up` again; Docker: start, exec of the startup step)",
      start,
      [{ vs: "docker", max: 1.3 }],
    ),
    rowOf("delete", "delete (Docker: `docker stop`, `docker rm -v`, `docker volume rm`)", del, [
      { vs: "docker", max: 1.3 },
    ]),
  ];
}
