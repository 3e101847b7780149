import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { containerExists, docker, dockerExec, logVolumeOf, volumeExists, volumeNamed } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { parseSse, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Every Docker cell of the seed's Create, Start, Stop and Delete tables and of
 * its error-handling table, against the real engine.
 */
let server: TestServer;
let creds: string;

beforeAll(async () => {
  creds = mkdtempSync(join(tmpdir(), "shed-creds-"));
  mkdirSync(join(creds, "gh"));
  writeFileSync(join(creds, "gh", "hosts.yml"), "github.com: {}\n");
  writeFileSync(join(creds, "token"), "tok\n");
  // Owned by uid 1000 (user shed), so these are direct bind mounts (live, readonly as a read-only mount);
  // root-owned sources are staged copies, tested in credentials.test.ts.
  spawnSync("chown", ["-R", "1000:1000", creds]);
  server = await startTestServer({
    credentials: {
      gh: { source: join(creds, "gh"), target: "/home/shed/.config/gh", readonly: true },
      token: { source: join(creds, "token"), target: "/home/shed/.token" },
      missing: { source: join(creds, "does-not-exist"), target: "/home/shed/.missing" },
    },
  });
});

async function createWithEvents(body: Record<string, unknown>) {
  const res = await server.api("POST", "/api/sheds", body, { accept: "text/event-stream" });
  expect(res.status).toBe(200);
  return parseSse(res.body as string);
}

describe("create (seed: Create Sequence, Docker column)", () => {
  const name = uniqueName("create");
  let events: any[];

  beforeAll(async () => {
    events = await createWithEvents({ name });
  });

  it("reports each step in the seed's order, then the shed", () => {
    const steps = events.filter((e) => e.type === "step").map((e) => e.step);
    expect(steps).toEqual([
      "storage",
      "devcontainer",
      "start",
      "local_dir",
      "credentials",
      "clone",
      "provision_file",
      "install_hook",
      "path_capture",
      "startup_hook",
    ]);
    const result = events.at(-1);
    expect(result.type).toBe("result");
    expect(result.shed).toMatchObject({
      name,
      status: "running",
      backend: "docker",
      workspace: "/workspace",
    });
  });

  it("step 1: creates the named volume shed-<name>-workspace, labelled", async () => {
    const v = await docker.getVolume(`shed-${name}-workspace`).inspect();
    expect(v.Labels).toMatchObject({ "dev.shed.managed": "true", "dev.shed.name": name });
  });

  it("step 2: creates and starts container shed-<name> with labels and SHED_* env", async () => {
    const info = await docker.getContainer(`shed-${name}`).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels).toMatchObject({
      "dev.shed.managed": "true",
      "dev.shed.name": name,
      "dev.shed.backend": "docker",
    });
    expect(info.Config.Env).toEqual(
      expect.arrayContaining(["SHED_CONTAINER=true", `SHED_NAME=${name}`, "SHED_WORKSPACE=/workspace"]),
    );
    expect(info.Mounts.find((m) => m.Destination === "/workspace")?.Name).toBe(`shed-${name}-workspace`);
  });

  it("step 4: credentials are bind mounts; readonly is honoured; a missing source is a warning", async () => {
    const gh = await dockerExec(name, ["cat", "/home/shed/.config/gh/hosts.yml"]);
    expect(gh.stdout).toBe("github.com: {}\n");
    const roWrite = await dockerExec(name, ["sh", "-c", "echo x > /home/shed/.config/gh/new"], "root");
    expect(roWrite.code).not.toBe(0);
    expect(roWrite.stderr).toMatch(/Read-only file system/);
    const rwWrite = await dockerExec(name, ["sh", "-c", "echo more >> /home/shed/.token"], "root");
    expect(rwWrite.code).toBe(0);
    expect(readFileSync(join(creds, "token"), "utf8")).toBe("tok\nmore\n");
    const warning = events.find((e) => e.type === "warning" && e.step === "credentials");
    expect(warning.message).toContain("does-not-exist");
    expect(events.find((e) => e.type === "step_end" && e.step === "credentials").outcome).toBe("warning");
    const shed = (await server.api("GET", `/api/sheds/${name}`)).body;
    expect(shed.warnings.join("\n")).toContain("credential missing");
  });

  it("steps 3 and 5 are skipped without --local-dir and --repo", () => {
    const ends = Object.fromEntries(events.filter((e) => e.type === "step_end").map((e) => [e.step, e.outcome]));
    expect(ends).toMatchObject({
      storage: "succeeded",
      start: "succeeded",
      local_dir: "skipped",
      clone: "skipped",
    });
  });
});

describe("repo clone (step 5)", () => {
  it("clones a repository into /workspace as user shed", async () => {
    const repoHost = await startGitDaemon();
    const name = uniqueName("clone");
    const events = await createWithEvents({ name, repo: `git://${repoHost}/demo.git` });
    expect(events.at(-1).type).toBe("result");
    expect(events.find((e) => e.type === "step_end" && e.step === "clone").outcome).toBe("succeeded");
    const ls = await dockerExec(name, ["stat", "-c", "%U %n", "/workspace/hello.txt", "/workspace/.git"]);
    expect(ls.stdout).toBe("shed /workspace/hello.txt\nshed /workspace/.git\n");
    const log = await dockerExec(name, ["git", "-C", "/workspace", "log", "--format=%s"]);
    expect(log.stdout.trim()).toBe("first commit");
  });

  it("a failed clone is a warning, the shed is still created, and credentials in the URL never show", async () => {
    const name = uniqueName("badclone");
    const events = await createWithEvents({ name, repo: "https://someone:sup3rs3cret@127.0.0.1:9/x.git" });
    expect(events.at(-1).type).toBe("result");
    expect(events.at(-1).shed.status).toBe("running");
    const warning = events.find((e) => e.type === "warning" && e.step === "clone");
    expect(warning.message).toMatch(/git clone https:\/\/\*\*\*@127\.0\.0\.1:9\/x\.git failed/);
    const everything = [
      JSON.stringify(events),
      JSON.stringify((await server.api("GET", `/api/sheds/${name}`)).body),
      JSON.stringify(await docker.getContainer(`shed-${name}`).inspect()),
      ...readdirSync(join(server.dir, "data", "sheds")).map((f) =>
        readFileSync(join(server.dir, "data", "sheds", f), "utf8"),
      ),
    ].join("\n");
    expect(everything).not.toContain("sup3rs3cret");
    expect(everything).toContain("***@127.0.0.1");
  });
});

describe("--local-dir (step 1 bind mount, step 3)", () => {
  it("mounts the directory as /workspace, makes no volume, skips the clone, and delete leaves the files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shed-local-"));
    writeFileSync(join(dir, "mine.txt"), "keep me\n");
    spawnSync("chown", ["-R", "1000:1000", dir]);
    const name = uniqueName("local");
    const events = await createWithEvents({ name, local_dir: dir });
    expect(events.at(-1).shed.local_dir).toBe(dir);
    const ends = Object.fromEntries(events.filter((e) => e.type === "step_end").map((e) => [e.step, e]));
    expect(ends.local_dir.outcome).toBe("succeeded");
    expect(ends.clone.outcome).toBe("skipped");
    expect(await volumeExists(name)).toBe(false);
    expect((await dockerExec(name, ["cat", "/workspace/mine.txt"])).stdout).toBe("keep me\n");
    expect((await dockerExec(name, ["sh", "-c", "echo from-shed > /workspace/new.txt"])).code).toBe(0);
    expect(readFileSync(join(dir, "new.txt"), "utf8")).toBe("from-shed\n");

    const del = await server.api("DELETE", `/api/sheds/${name}`);
    expect(del.status).toBe(204);
    expect(await containerExists(name)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(["mine.txt", "new.txt"]);
  });
});

describe("stop and start (seed: Stop and Start Sequences)", () => {
  it("stop stops the container, start starts it again, and the workspace survives", async () => {
    const name = uniqueName("stopstart");
    await createWithEvents({ name });
    expect((await dockerExec(name, ["sh", "-c", "echo persisted > /workspace/state.txt"])).code).toBe(0);

    const stop = await server.api("POST", `/api/sheds/${name}/stop`, undefined, {
      accept: "text/event-stream",
    });
    const stopEvents = parseSse(stop.body);
    expect(stopEvents.filter((e) => e.type === "step").map((e) => e.step)).toEqual([
      "provision_file",
      "shutdown_hook",
      "drain",
      "stop",
    ]);
    // Docker has no agent: the seed's drain step is there, and says why it does nothing.
    expect(stopEvents.find((e) => e.type === "step_end" && e.step === "drain")).toMatchObject({ outcome: "skipped" });
    expect(stopEvents.at(-1).shed.status).toBe("stopped");
    expect((await docker.getContainer(`shed-${name}`).inspect()).State.Running).toBe(false);

    const again = await server.api("POST", `/api/sheds/${name}/stop`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("SHED_ALREADY_STOPPED");

    const start = await server.api("POST", `/api/sheds/${name}/start`, undefined, {
      accept: "text/event-stream",
    });
    const startEvents = parseSse(start.body);
    expect(startEvents.filter((e) => e.type === "step").map((e) => e.step)).toEqual([
      "start",
      "local_dir",
      "credentials",
      "provision_file",
      "startup_hook",
    ]);
    expect(startEvents.at(-1).shed.status).toBe("running");
    expect((await dockerExec(name, ["cat", "/workspace/state.txt"])).stdout).toBe("persisted\n");

    const twice = await server.api("POST", `/api/sheds/${name}/start`);
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe("SHED_ALREADY_RUNNING");
  });

  it("stop delivers SIGTERM through docker-init, so the shed exits gracefully well before stop_timeout", async () => {
    const name = uniqueName("sigterm");
    await createWithEvents({ name });
    const info = await docker.getContainer(`shed-${name}`).inspect();
    expect(info.HostConfig.Init).toBe(true);
    const pid1 = await dockerExec(name, ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"], "root");
    expect(pid1.stdout).toMatch(/docker-init/);
    const stop = await server.api("POST", `/api/sheds/${name}/stop`);
    expect(stop.status).toBe(200);
    const state = (await docker.getContainer(`shed-${name}`).inspect()).State;
    expect(state.Running).toBe(false);
    // 143 = 128 + SIGTERM: the shed's processes got TERM and ended; 137 would mean the SIGKILL fallback was needed.
    expect(state.ExitCode).toBe(143);
  });
});

describe("delete (seed: Delete Sequence)", () => {
  it("removes container and volume, and the volume of its hook logs", async () => {
    const name = uniqueName("delete");
    await createWithEvents({ name });
    const logs = await logVolumeOf(name);
    expect((await docker.getVolume(logs).inspect()).Labels).toMatchObject({
      "dev.shed.name": name,
      "dev.shed.role": "hook-logs",
    });
    const res = await server.api("DELETE", `/api/sheds/${name}`, undefined, { accept: "text/event-stream" });
    const events = parseSse(res.body);
    expect(events.filter((e) => e.type === "step").map((e) => e.step)).toEqual([
      "provision_file",
      "shutdown_hook",
      "drain",
      "stop",
      "remove",
    ]);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
    expect(await volumeNamed(logs)).toBe(false);
    expect((await server.api("GET", `/api/sheds/${name}`)).body.error.code).toBe("SHED_NOT_FOUND");
  });

  it("keep_volume keeps the workspace, and a new shed of that name gets it back", async () => {
    const name = uniqueName("keep");
    await createWithEvents({ name });
    await dockerExec(name, ["sh", "-c", "echo precious > /workspace/work.txt"]);
    const logs = await logVolumeOf(name);
    const res = await server.api("DELETE", `/api/sheds/${name}?keep_volume=true`);
    expect(res.status).toBe(204);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(true);
    expect(await volumeNamed(logs)).toBe(false);

    const events = await createWithEvents({ name, repo: "https://127.0.0.1:9/never-cloned.git" });
    expect(events.find((e) => e.type === "step_end" && e.step === "storage").message).toMatch(/reusing/);
    expect(events.find((e) => e.type === "step_end" && e.step === "clone").outcome).toBe("skipped");
    expect((await dockerExec(name, ["cat", "/workspace/work.txt"])).stdout).toBe("precious\n");
  });
});

describe("fatal failures undo what create made (seed: Error Handling)", () => {
  it("a missing image fails create with IMAGE_NOT_FOUND and leaves no volume or container", async () => {
    const name = uniqueName("noimage");
    const res = await server.api("POST", "/api/sheds", { name, image: "shed-no-such-image:1" });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("IMAGE_NOT_FOUND");
    expect(res.body.error.message).toContain("shed-no-such-image:1");
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  });

  it("a container that cannot run commands fails create and is removed with its volume", async () => {
    const image = await emptyImage();
    const name = uniqueName("nostart");
    const res = await server.api("POST", "/api/sheds", { name, image }, { accept: "text/event-stream" });
    const events = parseSse(res.body);
    const last = events.at(-1);
    expect(last.type).toBe("error");
    expect(last.error.code).toBe("BACKEND_ERROR");
    expect(events.find((e) => e.type === "step_end" && e.step === "start").outcome).toBe("failed");
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  });

  it("a failed create over a kept volume does not delete that volume", async () => {
    const name = uniqueName("keepfail");
    await createWithEvents({ name });
    await dockerExec(name, ["sh", "-c", "echo mine > /workspace/keep.txt"]);
    await server.api("DELETE", `/api/sheds/${name}?keep_volume=true`);
    const res = await server.api("POST", "/api/sheds", { name, image: "shed-no-such-image:1" });
    expect(res.body.error.code).toBe("IMAGE_NOT_FOUND");
    expect(await volumeExists(name)).toBe(true);
  });
});

describe("Docker is the source of truth", () => {
  it("a shed stopped or removed outside Shed is reported truthfully", async () => {
    const name = uniqueName("truth");
    await createWithEvents({ name });
    await docker.getContainer(`shed-${name}`).stop({ t: 0 });
    expect((await server.api("GET", `/api/sheds/${name}`)).body.status).toBe("stopped");
    const listed = (await server.api("GET", "/api/sheds")).body.sheds.find((s: any) => s.name === name);
    expect(listed.status).toBe("stopped");
    // As `docker rm -v` would (the -v takes the anonymous hook-log volume along).
    await docker.getContainer(`shed-${name}`).remove({ force: true, v: true });
    const gone = await server.api("GET", `/api/sheds/${name}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe("SHED_NOT_FOUND");
  });
});

/** A git daemon in a container this test creates, serving one repository; returns host:port for git://. */
async function startGitDaemon(): Promise<string> {
  const { RUN_PREFIX } = await import("../helpers/names.js");
  const script = [
    "set -e",
    "mkdir -p /srv/src && cd /srv/src && git init -q -b main",
    "echo hello > hello.txt && git add hello.txt",
    "git -c user.email=t@example.com -c user.name=t commit -qm 'first commit'",
    "git clone -q --bare /srv/src /srv/demo.git",
    "touch /srv/demo.git/git-daemon-export-ok",
    "echo ready",
    "exec git daemon --reuseaddr --base-path=/srv --listen=0.0.0.0 --port=9418 /srv",
  ].join("\n");
  const c = await docker.createContainer({
    Image: "shed-base:latest",
    name: `shed-${RUN_PREFIX}-gitd-${Date.now()}`,
    Entrypoint: [],
    Cmd: ["bash", "-c", script],
    Labels: { "dev.shed.test": RUN_PREFIX },
  });
  await c.start();
  const ip = (await c.inspect()).NetworkSettings.Networks.bridge?.IPAddress ?? "";
  // Ready when the daemon accepts a connection: ask git itself, bounded.
  for (let i = 0; i < 100; i++) {
    const r = await c.exec({
      Cmd: ["git", "ls-remote", "git://127.0.0.1/demo.git"],
      AttachStdout: true,
      AttachStderr: true,
    });
    const s = await r.start({});
    s.resume();
    await new Promise((res) => s.on("end", res));
    if ((await r.inspect()).ExitCode === 0) return ip;
  }
  throw new Error("git daemon did not become ready");
}

/** An image with no programs at all, so the container cannot run anything. */
async function emptyImage(): Promise<string> {
  const tag = "shed-test-empty:latest";
  const r = spawnSync("sh", ["-c", 'tar -cf - --files-from /dev/null | docker import - "$1"', "sh", tag], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`docker import failed: ${r.stderr}`);
  return tag;
}
