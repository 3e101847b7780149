import { request as httpRequest } from "node:http";
import { beforeAll, describe, expect, it } from "vitest";
import { containerExists, docker, volumeExists } from "../helpers/docker.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

async function shedObjects(): Promise<string[]> {
  const c = await docker.listContainers({ all: true, filters: { name: [`shed-${RUN_PREFIX}-bad`] } });
  const v = (await docker.listVolumes({ filters: { name: [`shed-${RUN_PREFIX}-bad`] } })).Volumes ?? [];
  return [...c.flatMap((x) => x.Names), ...v.map((x) => x.Name)];
}

describe("GET /api/info", () => {
  it("names the server, its ports and its SSH host key", async () => {
    const info = await server.info();
    expect(info).toMatchObject({
      name: "test",
      http_port: server.httpPort,
      ssh_port: server.sshPort,
      default_backend: "docker",
    });
    expect(info.ssh_host_key).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    // The seed's backend differences, as data, for each enabled backend.
    expect(info.capabilities).toEqual({
      docker: expect.objectContaining({ credentialMechanism: "bind_mount", localDir: "bind_mount" }),
    });
  });
});

describe("bounded input", () => {
  it("a JSON body over 1 MiB is refused with 413 before it is read, whether its length is declared or not", async () => {
    const big = Buffer.from(JSON.stringify({ name: "x".repeat(1024 * 1024) }));
    for (const chunked of [false, true]) {
      const res = await rawPost("/api/sheds", big, chunked);
      expect(res.status, `chunked: ${chunked}`).toBe(413);
      expect(JSON.parse(res.body).error.code).toBe("PAYLOAD_TOO_LARGE");
    }
    expect((await server.info()).name).toBe("test");
  });

  it("an error never echoes more than about 100 characters of the value", async () => {
    const res = await server.api("POST", "/api/sheds", { name: `Bad${"y".repeat(5000)}` });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("(5003 characters)");
    expect(JSON.stringify(res.body).length).toBeLessThan(600);
  });
});

/** A POST with node:http, which reads the answer though the server stops reading the body (as it should at 413). */
function rawPost(path: string, body: Buffer, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port: server.httpPort,
        path,
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${server.token}`,
          ...(chunked ? {} : { "content-length": body.length }),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (t: string) => {
          text += t;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    // The client is not writing when the server answers and hangs up: a declared length over the limit is
    // refused on its headers alone, and a chunked body after one chunk past the limit (neither is ended).
    if (chunked) req.write(body);
    else req.flushHeaders();
  });
}

describe("bad input gets a clear error and changes nothing", () => {
  const cases: [string, unknown, number, string, RegExp][] = [
    ["a body that is not JSON", "{name:", 400, "INVALID_REQUEST", /not JSON/],
    [
      "an unknown field",
      { name: `${RUN_PREFIX}-bad-a`, colour: "red" },
      400,
      "INVALID_REQUEST",
      /unknown field colour/,
    ],
    ["a wrong type", { name: `${RUN_PREFIX}-bad-b`, no_provision: "yes" }, 400, "INVALID_REQUEST", /no_provision/],
    ["an uppercase name", { name: "Bad-Name" }, 400, "INVALID_SHED_NAME", /invalid shed name "Bad-Name"/],
    ["a name ending in -", { name: "bad-" }, 400, "INVALID_SHED_NAME", /invalid shed name/],
    ["a name too long", { name: `a${"b".repeat(63)}` }, 400, "INVALID_SHED_NAME", /64 characters long; at most 63/],
    ["an unknown backend", { name: `${RUN_PREFIX}-bad-c`, backend: "kvm" }, 400, "INVALID_REQUEST", /backend/],
    [
      "a backend not enabled",
      { name: `${RUN_PREFIX}-bad-d`, backend: "firecracker" },
      400,
      "BACKEND_NOT_ENABLED",
      /firecracker/,
    ],
    [
      "repo with local_dir",
      { name: `${RUN_PREFIX}-bad-e`, repo: "https://x/y.git", local_dir: "/tmp" },
      400,
      "INVALID_REQUEST",
      /--repo and --local-dir/,
    ],
    [
      "a missing local_dir",
      { name: `${RUN_PREFIX}-bad-f`, local_dir: "/nonexistent/dir" },
      400,
      "LOCAL_DIR_NOT_FOUND",
      /\/nonexistent\/dir/,
    ],
    ["a relative local_dir", { name: `${RUN_PREFIX}-bad-g`, local_dir: "rel/dir" }, 400, "INVALID_REQUEST", /absolute/],
    ["a bad timeout", { name: `${RUN_PREFIX}-bad-h`, timeout: "soon" }, 400, "INVALID_REQUEST", /timeout/],
    [
      "an unknown bundle",
      { name: `${RUN_PREFIX}-bad-i`, repo_bundle: "0".repeat(32) },
      400,
      "INVALID_REQUEST",
      /not an upload/,
    ],
  ];
  for (const [what, body, status, code, message] of cases) {
    it(`POST /api/sheds with ${what}`, async () => {
      const res = await server.api("POST", "/api/sheds", body);
      expect(res.status).toBe(status);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toMatch(message);
      expect(await shedObjects()).toEqual([]);
    });
  }

  it("unknown shed names give SHED_NOT_FOUND on every route", async () => {
    for (const [method, path] of [
      ["GET", "/api/sheds/nope"],
      ["POST", "/api/sheds/nope/start"],
      ["POST", "/api/sheds/nope/stop"],
      ["DELETE", "/api/sheds/nope"],
    ] as const) {
      const res = await server.api(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe("SHED_NOT_FOUND");
    }
  });

  it("a bad keep_volume value and a bad public key are rejected", async () => {
    const keep = await server.api("DELETE", "/api/sheds/nope?keep_volume=maybe");
    expect(keep.body.error.code).toBe("INVALID_REQUEST");
    const key = await server.api("POST", "/api/keys", { public_key: "not a key" });
    expect(key.status).toBe(400);
    expect(key.body.error.message).toMatch(/not an OpenSSH public key/);
  });
});

describe("lifecycle operations on one name are serialized", () => {
  it("concurrent creates of one name give exactly one shed and 409 for the rest", async () => {
    const name = uniqueName("race");
    const results = await Promise.all(Array.from({ length: 4 }, () => server.api("POST", "/api/sheds", { name })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.error.code).toBe("SHED_ALREADY_EXISTS");
    expect(await containerExists(name)).toBe(true);
    expect(await volumeExists(name)).toBe(true);
    const all = await docker.listContainers({ all: true, filters: { label: [`dev.shed.name=${name}`] } });
    expect(all).toHaveLength(1);
  });

  it("create without SSE answers 201 with the shed; GET and list agree", async () => {
    const name = uniqueName("plain");
    const res = await server.api("POST", "/api/sheds", { name });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name,
      status: "running",
      resources: { container: `shed-${name}`, volume: `shed-${name}-workspace` },
    });
    expect((await server.api("GET", `/api/sheds/${name}`)).body.name).toBe(name);
    const list = (await server.api("GET", "/api/sheds")).body.sheds.map((s: { name: string }) => s.name);
    expect(list).toContain(name);
  });
});
