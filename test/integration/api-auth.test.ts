import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { certFingerprint } from "../../src/core/cert-fingerprint.js";
import { makeSelfSignedCert } from "../../src/server/tls/self-signed-cert.js";
import { json, newCliUser, REPO_ROOT, show } from "../helpers/cli.js";
import { addServerAs } from "../helpers/cli-server.js";
import { containerExists } from "../helpers/docker.js";
import { freePort, stopProcess } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * The API is safe on a machine with other users and a browser on it: a token
 * on every request but /api/info (loopback included), no web page ever gets
 * through, bodies must say what they are, and off loopback the API speaks TLS
 * pinned by the CLI. Real servers, the packaged CLI and the real engine.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});

async function keysFile(s: TestServer): Promise<string> {
  try {
    return readFileSync(join(s.dir, "data", "authorized_keys"), "utf8");
  } catch {
    return "";
  }
}

describe("the API token", () => {
  it("is made on first start, 0600 in data_dir, and `shed-server token` prints it", async () => {
    const file = join(server.dir, "data", "api_token");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const printed = spawnSync(
      process.execPath,
      [join(REPO_ROOT, "dist", "shed-server.mjs"), "token", "--config", server.configFile],
      { encoding: "utf8" },
    );
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(`${server.token}\n`);
  });

  it("GET /api/info needs none, and reveals nothing secret", async () => {
    const s = server;
    const res = await s.api("GET", "/api/info", undefined, { authorization: "" });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(
      [
        // The backends' capability rows: what each can do, nothing about this server's secrets.
        "capabilities",
        "default_backend",
        "default_image",
        "enabled_backends",
        "http_port",
        "name",
        "ssh_host_key",
        "ssh_port",
        "version",
      ].sort(),
    );
    expect(JSON.stringify(res.body)).not.toContain(s.token);
  });

  const routes: [string, string, unknown?][] = [
    ["GET", "/api/sheds"],
    ["GET", "/api/sheds/x"],
    ["POST", "/api/sheds/x/start"],
    ["POST", "/api/sheds/x/stop"],
    ["POST", "/api/sheds/x/provision"],
    ["DELETE", "/api/sheds/x"],
  ];
  for (const [method, path] of routes) {
    it(`${method} ${path} without a token, or with a wrong one, is 401`, async () => {
      const s = server;
      for (const authorization of ["", `Bearer ${"A".repeat(43)}`, `Basic ${s.token}`, s.token]) {
        const res = await s.api(method, path, undefined, { authorization });
        expect(res.status, `${authorization || "no header"}`).toBe(401);
        expect(res.body.error.code).toBe("UNAUTHORIZED");
      }
    });
  }

  it("POST /api/sheds without the token creates nothing (the reported attack: text/plain, a foreign Host, /etc)", async () => {
    const s = server;
    const name = uniqueName("noauth");
    const res = await fetch(`${s.base}/api/sheds`, {
      method: "POST",
      headers: { "content-type": "text/plain", host: "evil.example" },
      body: JSON.stringify({ name, local_dir: "/etc" }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await containerExists(name)).toBe(false);
  });

  it("POST /api/keys without the token registers nothing", async () => {
    const s = server;
    const before = await keysFile(s);
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPiMEECsQcsTicsHH3bQLK63nqqmR/CRa9wm5mPMiehW intruder";
    const res = await s.api("POST", "/api/keys", { public_key: key }, { authorization: "" });
    expect(res.status).toBe(401);
    expect(await keysFile(s)).toBe(before);
  });
});

describe("what a web page can send", () => {
  it("a request with an Origin header is refused, even with the token", async () => {
    const s = server;
    const name = uniqueName("origin");
    const res = await s.api("POST", "/api/sheds", { name }, { origin: "http://evil.example" });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("ORIGIN_REFUSED");
    expect(await containerExists(name)).toBe(false);
    const info = await s.api("GET", "/api/info", undefined, { origin: "http://evil.example" });
    expect(info.status).toBe(403);
  });

  it("a JSON body sent as text/plain (a request browsers send without asking) is 415, even with the token", async () => {
    const s = server;
    const name = uniqueName("plain");
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await s.api("POST", "/api/sheds", JSON.stringify({ name, local_dir: "/etc" }), {
        "content-type": type,
      });
      expect(res.status, type).toBe(415);
      expect(res.body.error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    }
    expect(await containerExists(name)).toBe(false);
  });

  it("a bundle upload must be application/octet-stream", async () => {
    const s = server;
    const res = await s.api("PUT", "/api/bundles", "not a bundle", { "content-type": "application/json" });
    expect(res.status).toBe(415);
    expect(res.body.error.message).toContain("application/octet-stream");
  });

  it("no CORS headers are ever sent, not even to a preflight", async () => {
    const s = server;
    for (const [method, headers] of [
      ["OPTIONS", { origin: "http://evil.example", "access-control-request-method": "POST" }],
      ["GET", {}],
    ] as const) {
      const res = await fetch(`${s.base}/api/sheds`, {
        method,
        headers: { ...headers, authorization: `Bearer ${s.token}` },
      });
      const cors = [...res.headers.keys()].filter((k) => k.startsWith("access-control-"));
      expect(cors, method).toEqual([]);
    }
  });
});

describe("shed server add with the token", () => {
  it("takes it on stdin (--token-file -) or from $SHED_TOKEN, and keeps it in a 0600 config", async () => {
    const s = server;
    const viaStdin = newCliUser();
    await addServerAs(viaStdin, s, "dev");
    const cfg = parseYaml(readFileSync(viaStdin.configFile, "utf8"));
    expect(cfg.servers.dev.token).toBe(s.token);
    expect(statSync(viaStdin.configFile).mode & 0o777).toBe(0o600);
    const listed = await viaStdin.run(["--json", "list"]);
    expect(listed.code, show(listed)).toBe(0);

    const viaEnv = newCliUser({ SHED_TOKEN: s.token });
    const added = await viaEnv.run(["--json", "server", "add", "127.0.0.1", "--port", String(s.httpPort)]);
    expect(added.code, show(added)).toBe(0);
    // The token is not echoed back.
    expect(added.stdout).not.toContain(s.token);
    expect(json(added).token).toBeUndefined();
  });

  it("a wrong token fails clearly and saves nothing", async () => {
    const s = server;
    const u = newCliUser();
    const res = await u.run(
      ["server", "add", "127.0.0.1", "--port", String(s.httpPort), "--name", "dev", "--token-file", "-"],
      { input: `${"x".repeat(43)}\n` },
    );
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain("refused this CLI's API token");
    expect(res.stderr).toContain("shed-server token");
    expect(res.stderr).not.toContain("x".repeat(43));
    expect(readFileOr(u.configFile)).not.toContain("dev");
  });

  it("no token at all is a clear error that says where to get it", async () => {
    const s = server;
    const res = await newCliUser().run(["server", "add", "127.0.0.1", "--port", String(s.httpPort)]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("needs its API token");
    expect(res.stderr).toContain("shed-server token");
  });

  it("is never a bare command-line argument", async () => {
    const s = server;
    const res = await newCliUser().run(["server", "add", "127.0.0.1", "--port", String(s.httpPort), "--token", "x"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown option '--token'");
  });

  it("a server added before tokens existed (no token in its entry) gets a clear error with the fix", async () => {
    const s = server;
    const u = newCliUser();
    await addServerAs(u, s, "dev");
    const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
    delete cfg.servers.dev.token;
    writeFileSync(u.configFile, JSON.stringify(cfg));
    const res = await u.run(["list"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("needs an API token, and this CLI has none for it");
    expect(res.stderr).toContain(`--port ${s.httpPort} --name dev --token-file -`);
  });
});

describe("off loopback the API speaks TLS", () => {
  let tls: TestServer;

  it("bound to 0.0.0.0 it serves TLS with a self-signed certificate made once, and refuses plain HTTP", async () => {
    tls = await startTestServer({ bind: "0.0.0.0" });
    expect(tls.transport.kind).toBe("tls");
    const plain = await fetch(`http://127.0.0.1:${tls.httpPort}/api/info`).then(
      (r) => `HTTP ${r.status}`,
      () => "refused",
    );
    expect(plain).toBe("refused");
    const info = await httpsGet(tls.httpPort, "/api/info");
    expect(info.status).toBe(200);
    const certFile = join(tls.dir, "data", "tls", "cert.pem");
    const first = readFileSync(certFile, "utf8");
    expect(statSync(join(tls.dir, "data", "tls", "key.pem")).mode & 0o777).toBe(0o600);
    // The same certificate after a restart on the same data dir: pinned clients keep working.
    await tls.close();
    tls = await startTestServer({ bind: "0.0.0.0" }, tls.dir);
    expect(readFileSync(certFile, "utf8")).toBe(first);
  });

  it("shed server add pins the certificate, and the CLI works through it", async () => {
    const u = newCliUser();
    await addServerAs(u, tls, "remote");
    const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
    expect(tls.transport.kind === "tls" && cfg.servers.remote.tls_fingerprint).toBe(
      tls.transport.kind === "tls" ? tls.transport.fingerprint : "",
    );
    const listed = await u.run(["--json", "list"]);
    expect(listed.code, show(listed)).toBe(0);
    expect(Array.isArray(json(listed).sheds)).toBe(true);
    const servers = await u.run(["server", "list"]);
    expect(servers.stdout).toMatch(/remote\s+127\.0\.0\.1.*pinned/);
  });

  it("a changed certificate is refused before the token is sent", async () => {
    const u = newCliUser();
    await addServerAs(u, tls, "remote");
    // An impostor on the same port: another certificate, recording every byte it decrypts.
    await tls.close();
    const impostorCert = makeSelfSignedCert("impostor", ["127.0.0.1"]);
    const received: Buffer[] = [];
    const impostor = createTlsServer({ cert: impostorCert.cert, key: impostorCert.key }, (socket) => {
      socket.on("data", (c: Buffer) => received.push(c));
      socket.on("error", () => {});
    });
    await new Promise<void>((r) => impostor.listen(tls.httpPort, "127.0.0.1", r));
    try {
      const res = await u.run(["--json", "list"]);
      expect(res.code).toBe(1);
      expect(json(res).error.code).toBe("SERVER_IDENTITY_CHANGED");
      expect(json(res).error.message).toContain("is not the one pinned");
      expect(Buffer.concat(received).toString()).toBe("");
    } finally {
      await new Promise((r) => impostor.close(r));
    }
  });

  it("a configured tls_cert and tls_key are served instead, and pinned", async () => {
    const dir = newCliUser().dir;
    const pair = makeSelfSignedCert("configured", ["127.0.0.1"]);
    writeFileSync(join(dir, "cert.pem"), pair.cert);
    writeFileSync(join(dir, "key.pem"), pair.key, { mode: 0o600 });
    const configured = await startTestServer({ tls_cert: join(dir, "cert.pem"), tls_key: join(dir, "key.pem") });
    const u = newCliUser();
    await addServerAs(u, configured, "configured");
    const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
    expect(cfg.servers.configured.tls_fingerprint).toBe(certFingerprint(pair.cert));
    expect(existsSync(join(configured.dir, "data", "tls"))).toBe(false);
  });

  it("the CLI refuses a plain-HTTP server it cannot tell is on loopback, unless told --insecure-http", async () => {
    const plain = await startTestServer({ bind: "0.0.0.0", insecure_http: true });
    // 127.0.0.1 as an IPv4-mapped IPv6 address: it stays on this machine, but the CLI does not count it as loopback.
    const host = "::ffff:7f00:1";
    const u = newCliUser({ SHED_TOKEN: plain.token });
    const refused = await u.run(["server", "add", host, "--port", String(plain.httpPort)]);
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr).toContain("serves the API over plain HTTP");
    expect(refused.stderr).toContain("--insecure-http");
    expect(existsSync(u.configFile)).toBe(false);
    const allowed = await u.run(["server", "add", host, "--port", String(plain.httpPort), "--insecure-http"]);
    expect(allowed.code, show(allowed)).toBe(0);
    expect(allowed.stdout).toContain("plain HTTP");
  });

  it("plain HTTP off loopback only with insecure_http: true, and a warning at every start", async () => {
    const [httpPort, sshPort] = [await freePort(), await freePort()];
    const dir = newCliUser().dir;
    const config = join(dir, "server.yaml");
    writeFileSync(
      config,
      `name: insecure\nbind: 0.0.0.0\ninsecure_http: true\nhttp_port: ${httpPort}\nssh_port: ${sshPort}\ndata_dir: ${join(dir, "data")}\n`,
    );
    const child = spawn(process.execPath, [join(REPO_ROOT, "dist", "shed-server.mjs"), "serve", "--config", config], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (t: string) => {
        stderr += t;
      });
      const ready = await new Promise<string>((resolve, reject) => {
        child.stdout.setEncoding("utf8").once("data", resolve);
        child.once("exit", (code) => reject(new Error(`shed-server exited ${code}: ${stderr}`)));
      });
      expect(JSON.parse(ready)).toMatchObject({ ready: true, tls: false, bind: "0.0.0.0" });
      expect(stderr).toContain("WARNING: the API is plain HTTP on 0.0.0.0 (insecure_http: true)");
      const res = await fetch(`http://127.0.0.1:${httpPort}/api/info`);
      expect(res.status).toBe(200);
    } finally {
      if (child.pid) await stopProcess(child.pid);
    }
  });
});

function readFileOr(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** GET over TLS without checking the certificate (the test checks the server, not the CLI's pinning). */
function httpsGet(port: number, path: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on("error", reject);
    req.end();
  });
}
