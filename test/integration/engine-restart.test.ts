import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type CliUser, newCliUser, show } from "../helpers/cli.js";
import { addServerAs } from "../helpers/cli-server.js";
import { uniqueName } from "../helpers/names.js";
import { PrivateEngine } from "../helpers/private-engine.js";
import { op, resultOf, waitFor } from "../helpers/provision.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Budget: about 1.5 minutes on 2 cores, at most 3 (a dockerd of the test's
 * own started twice, shed-base copied into it in 10-20 s, four sheds).
 *
 * The Docker engine restarts under a running shed-server (as `systemctl
 * restart docker` does: SIGTERM, which stops every container, then a new
 * dockerd). It is a dockerd of this test's own (helpers/private-engine.ts), so
 * a restart that goes wrong cannot break the engine the other files use; the
 * server reaches it through the `docker_host` setting.
 *
 * Sheds have no restart policy: docker's own restart would bring them back
 * without their startup hook. They come back stopped; `shed start` or an SSH
 * connect starts them, startup hook included.
 */

let engine: PrivateEngine;
let server: TestServer;
let user: CliUser;

/** Four sheds: two running, one stopped before the restart, one in the middle of its startup hook. */
const alpha = uniqueName("eng-alpha");
const beta = uniqueName("eng-beta");
const gamma = uniqueName("eng-gamma");
const delta = uniqueName("eng-delta");
const ALL = [alpha, beta, gamma, delta];

/** The workspace data each shed holds before the restart, by its sha256. */
const dataSums = new Map<string, string>();

const PROVISION = "hooks:\n  startup: .shed/startup.sh\n";
/**
 * Each run appends a line, so the file counts the runs. A `hold` file makes one
 * run wait (it removes the file first, so only that run waits).
 */
const STARTUP = [
  "#!/bin/bash",
  "echo run >> /workspace/startups.log",
  "if [ -f /workspace/hold ]; then rm /workspace/hold; touch /workspace/holding; exec sleep 600; fi",
  "",
].join("\n");

/** Writes files into a shed's workspace as user shed, through the engine (not through Shed). */
async function writeWorkspace(name: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const r = await engine.exec(`shed-${name}`, [
      "sh",
      "-c",
      'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"',
      "sh",
      `/workspace/${path}`,
      content,
    ]);
    if (r.code !== 0) throw new Error(`writing ${path} in ${name} failed (exit ${r.code})`);
  }
}

/** What a running shed holds: its startup runs and its data's sha256. */
async function workspaceOf(name: string): Promise<{ startups: number; dataSum: string }> {
  const log = await engine.exec(`shed-${name}`, ["cat", "/workspace/startups.log"]);
  const data = await engine.exec(`shed-${name}`, ["sha256sum", "/workspace/data.bin"]);
  return {
    startups: log.stdout.split("\n").filter((l) => l === "run").length,
    dataSum: data.stdout.split(" ")[0] ?? "",
  };
}

async function statuses(): Promise<Record<string, string>> {
  const res = await server.api("GET", "/api/sheds");
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return Object.fromEntries(res.body.sheds.map((s: { name: string; status: string }) => [s.name, s.status]));
}

beforeAll(async () => {
  engine = new PrivateEngine();
  await engine.start();
  await engine.loadImage("shed-base:latest");
  server = await startTestServer({ docker_host: `unix://${engine.socket}` });
  user = newCliUser();
  await addServerAs(user, server, "dev");

  for (const name of ALL) {
    resultOf(await op(server, "POST", "/api/sheds", { name }));
    await writeWorkspace(name, { ".shed/provision.yaml": PROVISION, ".shed/startup.sh": STARTUP });
    const data = await engine.exec(`shed-${name}`, [
      "sh",
      "-c",
      "head -c 1048576 /dev/urandom > /workspace/data.bin && sha256sum /workspace/data.bin",
    ]);
    expect(data.code).toBe(0);
    dataSums.set(name, data.stdout.split(" ")[0] ?? "");
    resultOf(await op(server, "POST", `/api/sheds/${name}/provision`, { hook: "startup" }));
  }
  resultOf(await op(server, "POST", `/api/sheds/${gamma}/stop`));
});

afterAll(async () => {
  // The server goes first (helpers/cleanup.ts closes it too; twice closes once), then the engine and all it kept.
  await server?.close();
  await engine?.dispose();
});

describe("the Docker engine restarts under a running server", () => {
  let heldStart: Promise<any[]>;

  test("before: two sheds running, one stopped, one in the middle of its startup hook", async () => {
    await writeWorkspace(delta, { hold: "" });
    resultOf(await op(server, "POST", `/api/sheds/${delta}/stop`));
    heldStart = op(server, "POST", `/api/sheds/${delta}/start`);
    heldStart.catch(() => {});
    await waitFor(
      "delta's startup hook to hold",
      // Until the container is up, exec is refused (409): not there yet.
      async () =>
        (await engine.exec(`shed-${delta}`, ["test", "-f", "/workspace/holding"]).catch(() => undefined))?.code === 0,
      30_000,
    );
    expect(await statuses()).toEqual({ [alpha]: "running", [beta]: "running", [gamma]: "stopped", [delta]: "running" });
  });

  test("while the engine is down: clear errors naming the engine, no hang, the server keeps running", async () => {
    await engine.stop();
    const unreachable = `cannot reach the Docker engine at ${JSON.stringify(engine.socket)}`;
    const error = {
      code: "BACKEND_ERROR",
      message: expect.stringContaining(unreachable),
      hint: expect.stringContaining("shed-server reconnects by itself"),
    };

    // The start whose hook the engine's stop killed ends (its name is free again), and says why.
    const held = await heldStart;
    resultOf(held);
    const warning = held.find((e) => e.type === "warning" && e.step === "startup_hook");
    expect(warning?.message).toMatch(/stopped while this ran|cannot reach the Docker engine/);

    const list = await server.api("GET", "/api/sheds");
    expect(list).toEqual({ status: 502, body: { error } });
    expect(await server.api("GET", `/api/sheds/${alpha}`)).toEqual({ status: 502, body: { error } });
    const start = await op(server, "POST", `/api/sheds/${alpha}/start`);
    expect(start).toEqual([{ type: "error", error }]);

    const cliList = await user.run(["list"]);
    expect(cliList.code, show(cliList)).not.toBe(0);
    expect(cliList.stderr).toContain(unreachable);
    expect(cliList.stderr).toContain("hint: the Docker engine is stopped or restarting");
    // An SSH connect would start a stopped shed: here it is refused with the same reason.
    const ssh = await user.run(["exec", beta, "--", "true"]);
    expect(ssh.code, show(ssh)).not.toBe(0);
    expect(ssh.stderr).toContain(unreachable);

    expect((await server.api("GET", "/api/info")).status).toBe(200);
  });

  test("once the engine is back: the same server sees every shed's real state (the running ones stopped)", async () => {
    await engine.start();
    expect(await statuses()).toEqual({ [alpha]: "stopped", [beta]: "stopped", [gamma]: "stopped", [delta]: "stopped" });
    // The hook the engine's stop killed is recorded as failed with the reason, not left "running".
    const hook = (await server.api("GET", `/api/sheds/${delta}`)).body.provision.hooks.startup;
    expect(hook).toMatchObject({
      state: "failed",
      message: expect.stringMatching(/stopped while this ran|cannot reach/),
    });
  });

  test("`shed start` brings a shed back with its startup hook; its workspace is intact", async () => {
    const res = await user.run(["start", alpha]);
    expect(res.code, show(res)).toBe(0);
    expect(await workspaceOf(alpha)).toEqual({ startups: 2, dataSum: dataSums.get(alpha) });
  });

  test("an SSH connect brings a shed back with its startup hook; its workspace is intact", async () => {
    const res = await user.run(["exec", beta, "--", "cat", "/workspace/startups.log"]);
    expect(res.code, show(res)).toBe(0);
    expect(res.stdout).toBe("run\nrun\n");
    expect(await workspaceOf(beta)).toEqual({ startups: 2, dataSum: dataSums.get(beta) });
  });

  test("a shed stopped before the restart and one cut off mid-hook start again, intact", async () => {
    for (const name of [gamma, delta]) resultOf(await op(server, "POST", `/api/sheds/${name}/start`));
    expect(await workspaceOf(gamma)).toEqual({ startups: 2, dataSum: dataSums.get(gamma) });
    expect(await workspaceOf(delta)).toEqual({ startups: 3, dataSum: dataSums.get(delta) });
    expect(await statuses()).toEqual({ [alpha]: "running", [beta]: "running", [gamma]: "running", [delta]: "running" });
  });
});
