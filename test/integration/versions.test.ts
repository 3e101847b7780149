// Budget: about 10 s (no sheds are made: a real server answers, a fake one plays other releases).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERSION } from "../../src/core/version.js";
import { API_VERSION, MIN_PEER_API_VERSION, VERSION_HEADER } from "../../src/protocol/api-version.js";
import { type CliUser, json, newCliUser, REPO_ROOT, show, tempDir } from "../helpers/cli.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * The CLI and the server tell each other their release and API version on
 * every request and answer; an incompatible pair fails with both versions and
 * which one to upgrade, on whichever side finds out, and a compatible older or
 * newer one works.
 */

/** The in-process server's release (a dev build's) and the packaged CLI's (package.json's). */
const OWN = `${VERSION}; api=${API_VERSION}; min-api=${MIN_PEER_API_VERSION}`;
const CLI_VERSION: string = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).version;
const CLI_OWN = `${CLI_VERSION}; api=${API_VERSION}; min-api=${MIN_PEER_API_VERSION}`;

describe("the server", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });

  async function raw(method: string, path: string, cliVersion: string | undefined, body?: unknown) {
    const res = await fetch(`${server.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${server.token}`,
        ...(cliVersion !== undefined ? { [VERSION_HEADER]: cliVersion } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, header: res.headers.get(VERSION_HEADER), text, body: safeJson(text) };
  }

  it("says its release and API version on every answer: plain, refused and streamed", async () => {
    expect((await raw("GET", "/api/info", undefined)).header).toBe(OWN);
    const info = (await raw("GET", "/api/info", undefined)).body;
    expect(info.version).toBe(VERSION);
    expect((await raw("GET", "/api/no-such-route", undefined)).header).toBe(OWN);
    const unauthorized = await fetch(`${server.base}/api/sheds`);
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get(VERSION_HEADER)).toBe(OWN);
    // A lifecycle operation streams its events: its head is written past Hono.
    const streamed = await fetch(`${server.base}/api/sheds/${uniqueName("absent")}/start`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, accept: "text/event-stream" },
    });
    expect(streamed.headers.get("content-type")).toContain("text/event-stream");
    expect(streamed.headers.get(VERSION_HEADER)).toBe(OWN);
    await streamed.text();
  });

  it("refuses a CLI too old for it before doing anything, naming both versions and the CLI to upgrade", async () => {
    const name = uniqueName("old-cli");
    const res = await raw("POST", "/api/sheds", "0.0.3; api=0; min-api=0", { name });
    expect(res.status).toBe(400);
    expect(res.header).toBe(OWN);
    expect(res.body.error.code).toBe("VERSION_MISMATCH");
    expect(res.body.error.message).toContain("0.0.3 (API 0");
    expect(res.body.error.message).toContain(`shed-server test runs shed ${VERSION} (API ${API_VERSION}`);
    expect(res.body.error.hint).toContain("upgrade the shed CLI");
    expect(res.body.error.details).toMatchObject({ upgrade: "cli", cli_version: "0.0.3", server_version: VERSION });
    expect((await server.api("GET", `/api/sheds/${name}`)).status).toBe(404);
  });

  it("refuses a CLI that needs a newer server, naming the server to upgrade", async () => {
    const res = await raw("GET", "/api/sheds", `7.0.0; api=${API_VERSION + 6}; min-api=${API_VERSION + 1}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("VERSION_MISMATCH");
    expect(res.body.error.message).toContain("7.0.0");
    expect(res.body.error.message).toContain(VERSION);
    expect(res.body.error.hint).toContain("upgrade shed-server");
    expect(res.body.error.details.upgrade).toBe("server");
  });

  it("serves a newer CLI that still speaks its API, and a client that sends no version", async () => {
    const newer = await raw("GET", "/api/sheds", `4.2.0; api=${API_VERSION + 3}; min-api=${MIN_PEER_API_VERSION}`);
    expect(newer.status, newer.text).toBe(200);
    expect(Array.isArray(newer.body.sheds)).toBe(true);
    expect((await raw("GET", "/api/sheds", undefined)).status).toBe(200);
  });

  it("refuses a malformed version header, quoting it short", async () => {
    const res = await raw("GET", "/api/sheds", `${"x".repeat(5000)}; api=one`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("INVALID_REQUEST");
    expect(res.body.error.message).toContain(VERSION_HEADER);
    expect(res.text.length).toBeLessThan(600);
  });
});

// --- The CLI against a fake shed-server of another release -----------------------------------

interface FakeServer {
  port: number;
  /** What the fake says it is; undefined sends no header (a server from before version checks). */
  version: string | undefined;
  requests: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** Answers the few requests `server add` and `list` make, as a shed-server of `version` would. */
async function fakeServer(hostKey: string): Promise<FakeServer> {
  const fake: FakeServer = { port: 0, version: undefined, requests: [], close: async () => {} };
  const http: Server = createServer((req, res) => {
    fake.requests.push(req.headers);
    req.resume();
    const send = (status: number, body: unknown) => {
      res.writeHead(status, {
        "content-type": "application/json",
        ...(fake.version !== undefined ? { [VERSION_HEADER]: fake.version } : {}),
      });
      res.end(JSON.stringify(body));
    };
    const route = `${req.method} ${req.url}`;
    if (route === "GET /api/info") {
      send(200, {
        name: "fake",
        version: fake.version?.split(";")[0] ?? "0.0.1",
        http_port: fake.port,
        ssh_port: 2222,
        ssh_host_key: hostKey,
        enabled_backends: ["docker"],
        default_backend: "docker",
        default_image: "shed-base:latest",
      });
    } else if (route === "POST /api/keys") send(201, { added: true });
    else if (route === "GET /api/sheds") send(200, { sheds: [] });
    else send(404, { error: { code: "INVALID_REQUEST", message: `no route ${route}` } });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  fake.port = (http.address() as AddressInfo).port;
  fake.close = () => new Promise((resolve) => http.close(() => resolve()));
  return fake;
}

describe("the CLI", () => {
  let fake: FakeServer;
  let user: CliUser;
  const TOKEN = "fake-token-0123456789abcdef";
  beforeAll(async () => {
    const dir = tempDir("versions");
    const gen = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "fake", "-f", join(dir, "hk")]);
    expect(gen.status).toBe(0);
    const hostKey = readFileSync(join(dir, "hk.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    fake = await fakeServer(hostKey);
    user = newCliUser();
  });
  afterAll(() => fake?.close());

  const add = (name: string) =>
    user.run(["server", "add", "127.0.0.1", "--port", String(fake.port), "--name", name, "--token-file", "-"], {
      input: `${TOKEN}\n`,
    });

  it("refuses to add a server too old for it, naming both versions and the server to upgrade", async () => {
    fake.version = `0.0.5; api=${MIN_PEER_API_VERSION - 1}; min-api=0`;
    const res = await add("old");
    expect(res.code, show(res)).not.toBe(0);
    expect(res.stderr).toContain("shed-server old at http://127.0.0.1");
    expect(res.stderr).toContain("runs shed 0.0.5");
    expect(res.stderr).toContain(`this shed CLI is ${CLI_VERSION}`);
    expect(res.stderr).toContain("upgrade shed-server");
    const listed = await user.run(["--json", "server", "list"]);
    expect(JSON.stringify(json(listed))).not.toContain('"old"');
  });

  it("refuses to add a server that needs a newer CLI, naming the CLI to upgrade", async () => {
    fake.version = `9.1.0; api=${API_VERSION + 8}; min-api=${API_VERSION + 1}`;
    const res = await add("newer");
    expect(res.code, show(res)).not.toBe(0);
    expect(res.stderr).toContain("runs shed 9.1.0");
    expect(res.stderr).toContain(CLI_VERSION);
    expect(res.stderr).toContain("upgrade the shed CLI");
  });

  it("works with a newer server that still serves its API, sending its own version on every request", async () => {
    fake.version = `2.3.0; api=${API_VERSION + 2}; min-api=${MIN_PEER_API_VERSION}`;
    fake.requests = [];
    const added = await add("compatible");
    expect(added.code, show(added)).toBe(0);
    const listed = await user.run(["--json", "--server", "compatible", "list"]);
    expect(listed.code, show(listed)).toBe(0);
    expect(fake.requests.length).toBeGreaterThanOrEqual(3);
    for (const headers of fake.requests) {
      expect(headers[VERSION_HEADER]).toBe(CLI_OWN);
      expect(headers["user-agent"]).toBe(`shed/${CLI_VERSION}`);
    }
  });

  it("checks every answer: a server downgraded since it was added fails with both versions", async () => {
    fake.version = `0.0.4; api=${MIN_PEER_API_VERSION - 1}; min-api=0`;
    const listed = await user.run(["--server", "compatible", "list"]);
    expect(listed.code, show(listed)).not.toBe(0);
    expect(listed.stderr).toContain("runs shed 0.0.4");
    expect(listed.stderr).toContain(`this shed CLI is ${CLI_VERSION}`);
    expect(listed.stderr).toContain("upgrade shed-server");
  });

  it("works with a server from before version checks (no header: API 1)", async () => {
    fake.version = undefined;
    const listed = await user.run(["--json", "--server", "compatible", "list"]);
    expect(listed.code, show(listed)).toBe(0);
  });
});

function safeJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
