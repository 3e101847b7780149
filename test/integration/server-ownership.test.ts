import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { emptyMeta } from "../../src/lifecycle/meta-store.js";
import { type CliUser, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker } from "../helpers/docker.js";
import { earlierVersionShed } from "../helpers/earlier-shed.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Two real shed-servers on one Docker engine: each sees and acts on only its
 * own sheds; neither touches the other's, nor a container that is not Shed's,
 * nor a shed made by the version before server ids unless it holds its record.
 */
let a: TestServer;
let user: CliUser;
let b: TestServer;

useCliServer((server, cli) => {
  a = server;
  user = cli;
});

beforeAll(async () => {
  b = await startTestServer();
});

const serverId = (s: TestServer): string => readFileSync(join(s.dir, "data", "server_id"), "utf8").trim();
const recordFile = (s: TestServer, name: string): string => join(s.dir, "data", "sheds", `${name}.json`);
const listed = async (s: TestServer): Promise<any[]> => (await s.api("GET", "/api/sheds")).body.sheds;

async function inspect(name: string) {
  const info = await docker.getContainer(`shed-${name}`).inspect();
  return { id: info.Id, running: info.State.Running, labels: info.Config.Labels };
}

async function volumeLabels(name: string): Promise<Record<string, string> | undefined> {
  try {
    return (await docker.getVolume(`shed-${name}-workspace`).inspect()).Labels ?? {};
  } catch {
    return undefined;
  }
}

async function create(s: TestServer, name: string) {
  return s.api("POST", "/api/sheds", { name });
}

/** A running container of the shed-base image that is not Shed's (labelled only for the test run's cleanup). */
async function plainContainer(containerName: string): Promise<string> {
  const c = await docker.createContainer({
    name: containerName,
    Image: "shed-base:latest",
    Entrypoint: [],
    Cmd: ["sleep", "infinity"],
    Labels: { "dev.shed.test": RUN_PREFIX },
    HostConfig: { Init: true },
  });
  await c.start();
  return c.id;
}

/**
 * A shed exactly as the version before server ids made it: the same labels
 * (no dev.shed.server-id), the labelled workspace volume, the same mounts and
 * command. Returns the container's id.
 */
async function oldVersionShed(name: string): Promise<string> {
  return earlierVersionShed(name, { "dev.shed.managed": "true", "dev.shed.name": name });
}

/** The record the previous version wrote for a shed it created (what adopts the shed after the upgrade). */
function writeRecord(s: TestServer, name: string): void {
  writeFileSync(recordFile(s, name), `${JSON.stringify(emptyMeta(), null, 2)}\n`);
}

describe("server id", () => {
  it("is made once in data_dir and kept across restarts", async () => {
    const id = serverId(b);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(serverId(a)).not.toBe(id);
    // One server per data_dir: B stops before it starts again.
    await b.close();
    b = await startTestServer({}, b.dir);
    expect(serverId(b)).toBe(id);
  });
});

describe("two servers on one engine", () => {
  const name = uniqueName("own");
  let before: Awaited<ReturnType<typeof inspect>>;

  beforeAll(async () => {
    const res = await create(a, name);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    before = await inspect(name);
  });

  it("labels the container and the workspace volume with the server id that made them", async () => {
    expect(before.labels["dev.shed.server-id"]).toBe(serverId(a));
    expect((await volumeLabels(name))?.["dev.shed.server-id"]).toBe(serverId(a));
  });

  it("each server lists only its own sheds", async () => {
    expect((await listed(a)).find((s) => s.name === name)).toMatchObject({ owner: "this_server" });
    expect((await listed(b)).map((s) => s.name)).not.toContain(name);
  });

  it("the other server cannot get, start, stop, delete or exec in it: to it, the shed does not exist", async () => {
    for (const [method, path] of [
      ["GET", `/api/sheds/${name}`],
      ["POST", `/api/sheds/${name}/stop`],
      ["POST", `/api/sheds/${name}/start`],
      ["DELETE", `/api/sheds/${name}`],
    ] as const) {
      const res = await b.api(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe("SHED_NOT_FOUND");
    }
    // What B's SSH server does for exec, console, sftp and forwards.
    await expect(b.service.ensureRunning(name, () => {})).rejects.toMatchObject({ code: "SHED_NOT_FOUND" });
    expect(await inspect(name)).toEqual(before);
  });

  it("creating the same name on the other server fails naming the owner, and touches nothing of A's", async () => {
    const res = await create(b, name);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("SHED_NOT_OWNED");
    expect(res.body.error.message).toContain(serverId(a));
    expect(res.body.error.details).toMatchObject({ owner: "other_server", server_id: serverId(a) });
    expect(await inspect(name)).toEqual(before);
    expect((await volumeLabels(name))?.["dev.shed.server-id"]).toBe(serverId(a));
    // The volume was refused in step 1, so step 2 never ran: no container attempt, nothing to undo.
    expect((await a.api("GET", `/api/sheds/${name}`)).body.status).toBe("running");
  });

  it("with --local-dir (no volume), the container name clash is refused the same way", async () => {
    const res = await b.api("POST", "/api/sheds", { name, local_dir: tempDir("ownership-local") });
    expect(res.body.error?.code, JSON.stringify(res.body)).toBe("SHED_NOT_OWNED");
    expect(res.body.error.message).toContain(serverId(a));
    expect(await inspect(name)).toEqual(before);
  });

  it("ownership goes with the data dir: a server started again on A's owns A's sheds", async () => {
    // One server per data_dir: A stops, and starts again on its ports (the CLI user knows them).
    await a.close();
    a = await startTestServer({ http_port: a.httpPort, ssh_port: a.sshPort }, a.dir);
    expect((await listed(a)).find((s) => s.name === name)).toMatchObject({ owner: "this_server" });
    const del = await a.api("DELETE", `/api/sheds/${name}`);
    expect(del.status).toBe(204);
    await expect(docker.getContainer(before.id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await volumeLabels(name)).toBeUndefined();
  });
});

describe("objects that are not Shed's", () => {
  it("a plain container named shed-NAME makes create fail clearly, and it survives untouched", async () => {
    const name = uniqueName("plain");
    const id = await plainContainer(`shed-${name}`);
    const res = await create(a, name);
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: "SHED_NOT_OWNED", details: { owner: "not_shed" } });
    expect(res.body.error.message).toMatch(/not made by Shed/);
    const after = await inspect(name);
    expect(after.id).toBe(id);
    expect(after.running).toBe(true);
    // Step 1 made the workspace volume; the failed create removed it again (it was this create's).
    expect(await volumeLabels(name)).toBeUndefined();
    expect((await listed(a)).map((s) => s.name)).not.toContain(name);
  });

  it("a volume named shed-NAME-workspace that is not Shed's is refused, not adopted", async () => {
    const name = uniqueName("vol");
    await docker.createVolume({ Name: `shed-${name}-workspace`, Labels: { "dev.shed.test": RUN_PREFIX } });
    const res = await create(a, name);
    expect(res.body.error).toMatchObject({ code: "SHED_NOT_OWNED", details: { owner: "not_shed" } });
    expect(res.body.error.message).toContain(`shed-${name}-workspace`);
    expect(await volumeLabels(name)).toEqual({ "dev.shed.test": RUN_PREFIX });
    await expect(docker.getContainer(`shed-${name}`).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe("upgrade: sheds made before server ids", () => {
  it("one whose record is in this server's data_dir is adopted: listed, stopped, started, exec'd, deleted", async () => {
    const name = uniqueName("adopt");
    const id = await oldVersionShed(name);
    writeRecord(a, name);
    expect((await listed(a)).find((s) => s.name === name)).toMatchObject({ owner: "this_server", status: "running" });
    // B holds no record of it: it shows it as unowned and leaves it alone.
    expect((await listed(b)).find((s) => s.name === name)).toMatchObject({ owner: "unowned" });
    expect((await b.api("POST", `/api/sheds/${name}/stop`)).body.error.code).toBe("SHED_NOT_OWNED");

    expect((await a.api("POST", `/api/sheds/${name}/stop`)).body).toMatchObject({ status: "stopped" });
    expect((await inspect(name)).running).toBe(false);
    expect((await a.api("POST", `/api/sheds/${name}/start`)).body).toMatchObject({ status: "running" });
    const exec = await user.run(["exec", name, "--", "cat", "/etc/hostname"]);
    expect(exec.code, show(exec)).toBe(0);
    expect(exec.stdout).toBe(`${name}\n`);

    expect((await a.api("DELETE", `/api/sheds/${name}`)).status).toBe(204);
    await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await volumeLabels(name)).toBeUndefined();
  });

  it("one with no record is listed as unowned with a hint, and nobody touches it until it is adopted", async () => {
    const name = uniqueName("unowned");
    const id = await oldVersionShed(name);
    const shed = (await listed(a)).find((s) => s.name === name);
    expect(shed).toMatchObject({ owner: "unowned", status: "running" });
    expect(shed.owner_hint).toContain(`sheds/${name}.json`);
    expect(shed.owner_hint).toContain(`docker rm -f -v shed-${name}`);
    expect((await a.api("GET", `/api/sheds/${name}`)).body).toMatchObject({ owner: "unowned" });

    const list = await user.run(["list"]);
    expect(list.code, show(list)).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${name}\\s+running, unowned`));
    expect(list.stdout).toContain(`${name} (server dev) is unowned`);
    expect(list.stdout).toContain(`hint: if this server made it, adopt it`);
    const showed = await user.run(["show", name]);
    expect(showed.stdout, show(showed)).toContain(
      "owner: unowned (this server will not start, stop, delete or exec in it)",
    );

    for (const [method, path] of [
      ["POST", `/api/sheds/${name}/stop`],
      ["POST", `/api/sheds/${name}/start`],
      ["DELETE", `/api/sheds/${name}`],
      ["POST", "/api/sheds"],
    ] as const) {
      const res = await a.api(method, path, method === "POST" && path === "/api/sheds" ? { name } : undefined);
      expect(res.status, `${method} ${path}`).toBe(409);
      expect(res.body.error.code).toBe("SHED_NOT_OWNED");
      expect(res.body.error.message).toMatch(/older Shed version without a server id/);
      expect(res.body.error.hint).toContain(`sheds/${name}.json`);
    }
    const exec = await user.run(["exec", name, "--", "true"]);
    expect(exec.code, show(exec)).not.toBe(0);
    expect(exec.stderr).toMatch(/older Shed version without a server id/);
    expect(await inspect(name)).toMatchObject({ id, running: true });
    expect(await volumeLabels(name)).toEqual({ "dev.shed.managed": "true", "dev.shed.name": name });

    // Adopting it is creating its record in this server's data_dir.
    writeRecord(a, name);
    expect((await a.api("DELETE", `/api/sheds/${name}`)).status).toBe(204);
    await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await volumeLabels(name)).toBeUndefined();
  });

  it("a workspace volume kept by the old version is reused only by the server that holds the record", async () => {
    const name = uniqueName("kept");
    await docker.createVolume({
      Name: `shed-${name}-workspace`,
      Labels: { "dev.shed.managed": "true", "dev.shed.name": name },
    });
    const refused = await create(b, name);
    expect(refused.body.error).toMatchObject({ code: "SHED_NOT_OWNED", details: { owner: "unowned" } });
    expect(await volumeLabels(name)).toBeDefined();
    writeRecord(a, name);
    const res = await a.api("POST", "/api/sheds", { name }, { accept: "text/event-stream" });
    // Reused, and said: this server never recorded keeping it (the old version did not record that).
    expect(res.body).toMatch(/reusing workspace volume shed-\S+-workspace \(found, not recorded as kept\)/);
    expect(res.body).toContain("that this server has no record of keeping");
    expect((await inspect(name)).labels["dev.shed.server-id"]).toBe(serverId(a));
  });
});
