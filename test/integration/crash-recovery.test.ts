import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newCliUser, show, tempDir } from "../helpers/cli.js";
import { cleanupDocker, docker, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { type PackagedServer, serverConfig, startPackaged, stopAllPackaged } from "../helpers/packaged-server.js";
import { workspace } from "../helpers/provision.js";

/**
 * Budget: about 2.5 minutes on 2 cores, at most 6: about 30 starts of the
 * packaged server (half a second each), 14 small sheds made up front, one
 * operation per fault, and one clean server that checks and removes it all.
 *
 * shed-server is SIGKILLed in every step of create, start, stop and delete, by
 * its own test-only fault injection (SHED_FAULT_KILL_AT=op:step[:after]), and
 * started again on the same data_dir. Each shed must then be either complete,
 * gone (a create killed before its container was usable is undone; a delete
 * killed while removing is finished) or shown as interrupted at that step with
 * the way out; `delete` must remove everything, the name must be usable again,
 * and nothing may be left: containers, volumes (the hook-log one too), records,
 * bundles, temp files. One server per data_dir is checked along the way.
 */

const dir = tempDir("crash");
const config = serverConfig(dir);
const dataDir = join(dir, "data");
const stderrs: string[] = [];

const HOOKS = {
  ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh\n  shutdown: shutdown.sh\n",
  "install.sh": "#!/bin/sh\necho installed\n",
  "startup.sh": "#!/bin/sh\necho started\n",
  "shutdown.sh": "#!/bin/sh\necho stopping\n",
};

type Expect = "gone" | { op: string; step: string; hint: RegExp; status?: "running" | "stopped" };
interface Case {
  fault: string;
  name: string;
  /** Made before the faulted server runs (by a clean one): a running or stopped local-dir shed, or a volume one. */
  before?: "running" | "stopped" | "volume";
  run(s: PackagedServer, c: Case): Promise<{ cut: boolean; events: any[] }>;
  expect: Expect;
}

const createFromBundle = async (s: PackagedServer, c: Case) => {
  const up = await s.api("PUT", "/api/bundles", bundle);
  if (up.status !== 201) throw new Error(`bundle upload: ${JSON.stringify(up.body)}`);
  return s.op("POST", "/api/sheds", { name: c.name, repo_bundle: up.body.id, repo_label: "crash-repo" });
};
const onShed = (what: string) => (s: PackagedServer, c: Case) => s.op("POST", `/api/sheds/${c.name}/${what}`);
const del = (keep: boolean) => (s: PackagedServer, c: Case) =>
  s.op("DELETE", `/api/sheds/${c.name}${keep ? "?keep_volume=true" : ""}`);

const RECREATE = /shed delete .*then create it again/;
const CASES: Case[] = [
  ...["storage", "storage:after", "devcontainer", "start", "start:after"].map(
    (step): Case => ({ fault: `create:${step}`, name: "", run: createFromBundle, expect: "gone" }),
  ),
  {
    fault: "create:local_dir",
    name: "",
    run: (s, c) => s.op("POST", "/api/sheds", { name: c.name, local_dir: workspace(HOOKS) }),
    expect: { op: "create", step: "local_dir", hint: RECREATE },
  },
  ...["credentials", "clone"].map(
    (step): Case => ({
      fault: `create:${step}`,
      name: "",
      run: createFromBundle,
      expect: { op: "create", step, hint: RECREATE },
    }),
  ),
  ...["provision_file", "install_hook", "path_capture"].map(
    (step): Case => ({
      fault: `create:${step}`,
      name: "",
      run: createFromBundle,
      expect: { op: "create", step, hint: /shed provision \S+ runs the install hook/ },
    }),
  ),
  {
    fault: "create:startup_hook",
    name: "",
    run: createFromBundle,
    expect: { op: "create", step: "startup_hook", hint: /shed provision \S+ --hook startup/ },
  },
  ...["start", "local_dir", "credentials", "provision_file", "startup_hook"].map(
    (step): Case => ({
      fault: `start:${step}`,
      name: "",
      before: "stopped",
      run: onShed("start"),
      // Killed before `docker start`, it is still stopped; after it, running without its startup hook.
      expect:
        step === "start"
          ? { op: "start", step, hint: /shed start/, status: "stopped" }
          : { op: "start", step, hint: /--hook startup/, status: "running" },
    }),
  ),
  ...["provision_file", "shutdown_hook", "stop"].map(
    (step): Case => ({
      fault: `stop:${step}`,
      name: "",
      before: "running",
      run: onShed("stop"),
      expect: { op: "stop", step, hint: /shed stop \S+ stops it again/, status: "running" },
    }),
  ),
  {
    fault: "stop:stop:after",
    name: "",
    before: "running",
    run: onShed("stop"),
    expect: { op: "stop", step: "stop", hint: /it is stopped/, status: "stopped" },
  },
  ...["provision_file", "shutdown_hook", "stop"].map(
    (step): Case => ({
      fault: `delete:${step}`,
      name: "",
      before: "running",
      run: del(false),
      expect: { op: "delete", step, hint: /shed delete \S+ deletes it again/ },
    }),
  ),
  { fault: "delete:remove", name: "", before: "running", run: del(false), expect: "gone" },
  { fault: "delete:remove:after", name: "", before: "volume", run: del(false), expect: "gone" },
];
for (const c of CASES) c.name = uniqueName(c.fault.replaceAll(/[:_]/g, "-"));
/** A volume shed whose `delete --keep-volume` is killed in its remove step. */
const keptCase: Case = {
  fault: "delete:remove",
  name: uniqueName("keep"),
  before: "volume",
  run: del(true),
  expect: "gone",
};
/** A volume shed whose plain delete is killed before its remove step removed anything. */
const droppedCase: Case = {
  fault: "delete:remove",
  name: uniqueName("drop"),
  before: "volume",
  run: del(false),
  expect: "gone",
};
const ALL = [...CASES, keptCase, droppedCase];

let bundle: Uint8Array;
let server: PackagedServer;

/** A small git repository with a provision file, as the bundle the CLI uploads for `--repo DIR`. */
function makeBundle(): Uint8Array {
  const repo = workspace(HOOKS);
  const git = (...args: string[]) => {
    const r = spawnSync("git", [
      "-C",
      repo,
      "-c",
      "safe.directory=*",
      "-c",
      "user.name=t",
      "-c",
      "user.email=t@t",
      ...args,
    ]);
    if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  };
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "init");
  git("bundle", "create", "-q", join(repo, "..", "repo.bundle"), "--all");
  return readFileSync(join(repo, "..", "repo.bundle"));
}

async function ok(s: PackagedServer, method: string, path: string, body?: unknown): Promise<any[]> {
  const res = await s.op(method, path, body);
  const last = res.events.at(-1);
  if (res.cut || res.status !== 200 || last?.type === "error") {
    throw new Error(`${method} ${path}: ${JSON.stringify(res)}`);
  }
  return res.events;
}

const labelled = (name: string) => ({ filters: { label: [`dev.shed.name=${name}`] } });
async function leftovers(name: string): Promise<string[]> {
  const containers = await docker.listContainers({ all: true, ...labelled(name) });
  const { Volumes } = await docker.listVolumes(labelled(name));
  return [
    ...containers.map((c) => `container ${c.Names[0]}`),
    ...(Volumes ?? []).map((v) => `volume ${v.Name}`),
    ...(existsSync(join(dataDir, "sheds", `${name}.json`)) ? ["record"] : []),
  ];
}

function filesUnder(d: string): string[] {
  if (!existsSync(d)) return [];
  return readdirSync(d, { recursive: true, encoding: "utf8" });
}

beforeAll(async () => {
  if (!existsSync(join(__dirname, "../../dist/shed-server.mjs"))) throw new Error("run `npm run build` first");
  bundle = makeBundle();
  // The sheds the start, stop and delete faults act on, made by a clean server.
  const s = await startPackaged(config);
  const pending = ALL.filter((c) => c.before);
  for (let i = 0; i < pending.length; i += 3) {
    await Promise.all(
      pending.slice(i, i + 3).map(async (c) => {
        if (c.before === "volume") {
          await ok(s, "POST", "/api/sheds", { name: c.name });
          const w = await dockerExec(c.name, ["sh", "-c", "echo mine > /workspace/marker"]);
          if (w.code !== 0) throw new Error(w.stderr);
          return;
        }
        // Its hooks are for the start and stop steps; the create needs not run them.
        await ok(s, "POST", "/api/sheds", { name: c.name, local_dir: workspace(HOOKS), no_provision: true });
        if (c.before === "stopped") await ok(s, "POST", `/api/sheds/${c.name}/stop`);
      }),
    );
  }
  await s.stop();
  stderrs.push(s.stderr());
});

afterAll(async () => {
  await stopAllPackaged();
  await cleanupDocker();
});

describe("shed-server SIGKILLed in every step, then started again on the same data_dir", () => {
  it("each faulted server dies in its step", async () => {
    for (const c of ALL) {
      const s = await startPackaged(config, { SHED_FAULT_KILL_AT: c.fault });
      const res = await c.run(s, c);
      // The connection is cut when the server dies; an operation that ended instead means the fault missed.
      const end = res.cut ? await s.exited : await s.stop().then(() => "survived");
      stderrs.push(s.stderr());
      expect(end, `${c.fault} on ${c.name}: ${JSON.stringify(res.events.slice(-3))}`).toEqual({
        code: null,
        signal: "SIGKILL",
      });
    }
  });

  it("a clean start recovers: finished or undone ones are gone, the others say where they stopped and how to recover", async () => {
    server = await startPackaged(config);
    const listed = new Map<string, any>(
      ((await server.api("GET", "/api/sheds")).body.sheds as any[]).map((s) => [s.name, s]),
    );
    for (const c of ALL) {
      const shed = listed.get(c.name);
      if (c.expect === "gone") {
        expect(shed, c.fault).toBeUndefined();
        expect(await leftovers(c.name), `${c.fault} ${c.name}`).toEqual(
          c === keptCase ? [`volume shed-${c.name}-workspace`] : [],
        );
        continue;
      }
      expect(shed?.interrupted, `${c.fault}: ${JSON.stringify(shed)}`).toMatchObject({
        operation: c.expect.op,
        step: c.expect.step,
        message: `${c.expect.op} interrupted at step ${c.expect.step} (shed-server stopped during it)`,
      });
      expect(shed.interrupted.hint, c.fault).toMatch(c.expect.hint);
      if (c.expect.status) expect(shed.status, c.fault).toBe(c.expect.status);
    }
    // What recovery did is said on the server's stderr, per shed.
    const said = stderrs.join("") + server.stderr();
    expect(said).toContain(
      `delete of ${keptCase.name} was interrupted at step remove (shed-server stopped): finished, workspace kept`,
    );
    expect(said).toContain(
      `delete of ${droppedCase.name} was interrupted at step remove (shed-server stopped): finished, its workspace volume removed`,
    );
    expect(said).toMatch(new RegExp(`create of ${CASES[0]?.name} was interrupted at step storage`));
  });

  it("shed list shows the interruption and the way out", async () => {
    const user = newCliUser();
    const add = await user.run(
      ["server", "add", "127.0.0.1", "--port", String(server.httpPort), "--name", "crash", "--token-file", "-"],
      { input: `${server.token}\n` },
    );
    expect(add.code, show(add)).toBe(0);
    const res = await user.run(["list"]);
    expect(res.code, show(res)).toBe(0);
    const clone = CASES.find((c) => c.fault === "create:clone");
    expect(res.stdout).toMatch(new RegExp(`${clone?.name} +running, create interrupted at clone`));
    expect(res.stdout).toContain(`${clone?.name} (server crash): create interrupted at step clone`);
    expect(res.stdout).toMatch(/hint: the shed is incomplete: `shed delete \S+`, then create it again/);
  });

  it("the operation the hint names ends the interrupted state", async () => {
    const install = CASES.find((c) => c.fault === "create:install_hook") as Case;
    await ok(server, "POST", `/api/sheds/${install.name}/provision`, {});
    const after = (await server.api("GET", `/api/sheds/${install.name}`)).body;
    expect(after.interrupted).toBeUndefined();
    expect(after.provision.hooks.install.state).toBe("succeeded");
    const stopped = CASES.find((c) => c.fault === "stop:stop") as Case;
    await ok(server, "POST", `/api/sheds/${stopped.name}/stop`);
    expect((await server.api("GET", `/api/sheds/${stopped.name}`)).body.interrupted).toBeUndefined();
    // A clone that never happened is not healed by a restart of the shed.
    const clone = CASES.find((c) => c.fault === "create:clone") as Case;
    await ok(server, "POST", `/api/sheds/${clone.name}/stop`);
    await ok(server, "POST", `/api/sheds/${clone.name}/start`);
    expect((await server.api("GET", `/api/sheds/${clone.name}`)).body.interrupted).toMatchObject({ step: "clone" });
  });

  it("delete removes everything, and every name can be created again", async () => {
    const present = new Set(((await server.api("GET", "/api/sheds")).body.sheds as any[]).map((s) => s.name));
    for (const c of ALL) {
      if (present.has(c.name)) await ok(server, "DELETE", `/api/sheds/${c.name}`);
      if (c === keptCase) continue;
      expect(await leftovers(c.name), c.fault).toEqual([]);
    }
    for (let i = 0; i < ALL.length; i += 4) {
      await Promise.all(
        ALL.slice(i, i + 4).map(async (c) => {
          const events = await ok(server, "POST", "/api/sheds", { name: c.name });
          const shed = events.at(-1).shed;
          expect(shed.interrupted, c.fault).toBeUndefined();
          const storage = events.find((e) => e.type === "step_end" && e.step === "storage");
          const marker = await dockerExec(c.name, ["cat", "/workspace/marker"]);
          if (c === keptCase) {
            // Kept on purpose: it comes back, and says so.
            expect(storage.message).toMatch(/^reusing the workspace kept by `delete --keep-volume`/);
            expect(marker.stdout).toBe("mine\n");
          } else {
            // Left by a delete that was not to keep it: never adopted.
            expect(storage.message, c.fault).toBe("workspace volume created");
            expect(marker.code, c.fault).not.toBe(0);
          }
          await ok(server, "DELETE", `/api/sheds/${c.name}`);
          expect(await leftovers(c.name), c.fault).toEqual([]);
        }),
      );
    }
  });

  it("nothing is orphaned: no bundle, no temp file, no kept marker, no object of this server", async () => {
    expect(filesUnder(join(dataDir, "bundles"))).toEqual([]);
    expect(filesUnder(dataDir).filter((f) => f.endsWith(".tmp") || f.endsWith(".part"))).toEqual([]);
    expect(filesUnder(join(dataDir, "sheds"))).toEqual([]);
    expect(filesUnder(join(dataDir, "kept"))).toEqual([]);
    const id = readFileSync(join(dataDir, "server_id"), "utf8").trim();
    const mine = { filters: { label: [`dev.shed.server-id=${id}`] } };
    expect(await docker.listContainers({ all: true, ...mine })).toEqual([]);
    expect((await docker.listVolumes(mine)).Volumes ?? []).toEqual([]);
  });
});

describe("one shed-server per data_dir", () => {
  it("a second server on the same data_dir refuses to start, naming the first one's pid", async () => {
    const second = startPackaged(config);
    await expect(second).rejects.toThrow(
      new RegExp(
        `data_dir ${dataDir} is in use by another shed-server \\(pid ${server.proc.pid}\\)[^]*kill ${server.proc.pid}`,
      ),
    );
    // The first one is untouched.
    expect((await server.api("GET", "/api/sheds")).status).toBe(200);
  });

  it("a SIGKILLed holder leaves no stale lock", async () => {
    server.proc.kill("SIGKILL");
    await server.exited;
    server = await startPackaged(config);
    expect((await server.api("GET", "/api/sheds")).status).toBe(200);
  });
});

describe("a workspace kept by delete --keep-volume", () => {
  it("is untouched by a --local-dir shed of the same name and its delete", async () => {
    const name = uniqueName("kept-local");
    await ok(server, "POST", "/api/sheds", { name });
    expect((await dockerExec(name, ["sh", "-c", "echo mine > /workspace/marker"])).code).toBe(0);
    await ok(server, "DELETE", `/api/sheds/${name}?keep_volume=true`);
    await ok(server, "POST", "/api/sheds", { name, local_dir: workspace({}) });
    const events = await ok(server, "DELETE", `/api/sheds/${name}`);
    expect(events.find((e) => e.type === "step_end" && e.step === "remove").message).toBe(
      "container removed; workspace kept",
    );
    expect(await leftovers(name)).toEqual([`volume shed-${name}-workspace`]);
    const again = await ok(server, "POST", "/api/sheds", { name });
    expect(again.find((e) => e.type === "step_end" && e.step === "storage").message).toMatch(
      /^reusing the workspace kept/,
    );
    expect((await dockerExec(name, ["cat", "/workspace/marker"])).stdout).toBe("mine\n");
    await ok(server, "DELETE", `/api/sheds/${name}`);
    expect(await leftovers(name)).toEqual([]);
  });
});
