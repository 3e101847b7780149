/**
 * `shed doctor` through the packaged CLI against real servers (plain HTTP on loopback, and TLS
 * with a pinned certificate), the real OpenSSH client and ssh-keyscan, and a real shed on Docker
 * for the ssh-config block: green on a fresh `shed server add`; red, each with a hint, for a wrong
 * token, a pinned host key or certificate that is no longer the server's, a server that is gone,
 * and a ~/.ssh/config block gone stale (an entry edited, its shed deleted).
 * Budget: 90 s (measured 32 s alone, 52 s beside other test runs): two servers, one shed, a dozen CLI runs.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { certFingerprint } from "../../src/core/cert-fingerprint.js";
import { makeSelfSignedCert } from "../../src/server/tls/self-signed-cert.js";
import { type CliUser, cliOk, newCliUser, tempDir } from "../helpers/cli.js";
import { addServerAs, useCliServer } from "../helpers/cli-server.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

interface Check {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  hint?: string;
}

let srv: TestServer;
let user: CliUser;
useCliServer((server, cli) => {
  srv = server;
  user = cli;
});

async function doctor(u: CliUser) {
  const r = await u.run(["--json", "doctor"]);
  const out = `exit ${r.code}\n${r.stdout}${r.stderr}`;
  let report: { ok: boolean; checks: Check[] };
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON:\n${out}`);
  }
  const find = (name: string): Check => {
    const c = report.checks.find((x) => x.check === name);
    if (!c) throw new Error(`no check ${name}:\n${out}`);
    return c;
  };
  return { code: r.code, out, report, find };
}

/** Changes the user's client config as an editor (or an attacker) would, outside the CLI. */
function editConfig(u: CliUser, change: (cfg: any) => void): void {
  const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
  change(cfg);
  writeFileSync(u.configFile, stringify(cfg), { mode: 0o600 });
}

async function userOf(server: TestServer, name: string): Promise<CliUser> {
  const u = newCliUser();
  await addServerAs(u, server, name);
  return u;
}

describe("shed doctor", () => {
  it("is green for a server just added: reachable, its keys pinned, the token accepted, ssh found", async () => {
    const r = await doctor(user);
    expect(r.code, r.out).toBe(0);
    expect(r.report.ok).toBe(true);
    expect(r.find("ssh")).toMatchObject({ status: "ok", detail: expect.stringMatching(/\/ssh$/) });
    expect(r.find("server dev: reachable")).toMatchObject({ status: "ok" });
    expect(r.find("server dev: reachable").detail).toContain(`127.0.0.1:${srv.httpPort}`);
    expect(r.find("server dev: TLS certificate").detail).toContain("plain HTTP on loopback");
    expect(r.find("server dev: SSH host key")).toMatchObject({
      status: "ok",
      detail: `127.0.0.1:${srv.sshPort} presents the pinned key`,
    });
    expect(r.find("server dev: token")).toMatchObject({ status: "ok" });
    expect(r.find("ssh-config block").detail).toContain("not installed");
    const text = await user.run(["doctor"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ok {3}server dev: token: accepted \(\d+ sheds\)$/m);
    expect(text.stdout).toMatch(/^all \d+ checks passed/m);
  });

  it("is red for a token the server does not accept, with the command that fixes it", async () => {
    const u = await userOf(srv, "dev");
    editConfig(u, (cfg) => {
      cfg.servers.dev.token = "A".repeat(43);
    });
    const r = await doctor(u);
    expect(r.code, r.out).toBe(1);
    expect(r.find("server dev: reachable").status).toBe("ok");
    const token = r.find("server dev: token");
    expect(token).toMatchObject({ status: "fail", detail: "the server refused the API token in the client config" });
    expect(token.hint).toContain(`shed-server token | shed server add 127.0.0.1 --port ${srv.httpPort} --name dev`);
    // The token is a secret: never printed.
    expect(r.out).not.toContain("A".repeat(43));
  });

  it("is red for a pinned SSH host key the server no longer presents", async () => {
    const u = await userOf(srv, "dev");
    const keyFile = join(tempDir("other-key"), "key");
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile], { stdio: "ignore" });
    const other = readFileSync(`${keyFile}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    editConfig(u, (cfg) => {
      cfg.servers.dev.host_key = other;
    });
    const r = await doctor(u);
    expect(r.code, r.out).toBe(1);
    const c = r.find("server dev: SSH host key");
    expect(c.status).toBe("fail");
    expect(c.detail).toContain(`127.0.0.1:${srv.sshPort} presents ssh-ed25519`);
    expect(c.detail).toContain("not the key pinned when the server was added");
    expect(c.hint).toContain("intercepting");
  });

  it("is red for a server that no longer answers", async () => {
    const gone = await startTestServer();
    const u = await userOf(gone, "gone");
    await gone.close();
    const r = await doctor(u);
    expect(r.code, r.out).toBe(1);
    const c = r.find("server gone: reachable");
    expect(c).toMatchObject({ status: "fail", hint: expect.stringContaining("is shed-server running there?") });
    expect(c.detail).toContain(`cannot reach shed-server gone at 127.0.0.1:${gone.httpPort}`);
  });
});

describe("shed doctor with a TLS server", () => {
  let tls: TestServer;
  let u: CliUser;

  beforeAll(async () => {
    const dir = tempDir("doctor-tls");
    const pair = makeSelfSignedCert("doctor", ["127.0.0.1"]);
    writeFileSync(join(dir, "cert.pem"), pair.cert);
    writeFileSync(join(dir, "key.pem"), pair.key, { mode: 0o600 });
    tls = await startTestServer({ tls_cert: join(dir, "cert.pem"), tls_key: join(dir, "key.pem") });
    u = await userOf(tls, "tls");
  });

  it("is green while the server's certificate is the pinned one", async () => {
    const r = await doctor(u);
    expect(r.code, r.out).toBe(0);
    expect(r.find("server tls: TLS certificate").detail).toMatch(/^matches the pinned sha256:/);
  });

  it("is red, and sends nothing, once the pinned certificate is not the one served", async () => {
    const other = certFingerprint(makeSelfSignedCert("impostor", ["127.0.0.1"]).cert);
    editConfig(u, (cfg) => {
      cfg.servers.tls.tls_fingerprint = other;
    });
    const r = await doctor(u);
    expect(r.code, r.out).toBe(1);
    const c = r.find("server tls: TLS certificate");
    expect(c.status).toBe("fail");
    expect(c.detail).toContain(`pinned ${other}`);
    expect(c.detail).toContain("nothing was sent");
    // No token check: the token never left this machine.
    expect(r.report.checks.some((x) => x.check === "server tls: token")).toBe(false);
  });
});

describe("shed doctor and the ~/.ssh/config block", () => {
  const shed = uniqueName("doctor");
  const sshConfig = () => join(user.dir, ".ssh", "config");

  it("is green for a block just installed", async () => {
    await cliOk(user, ["create", shed]);
    await cliOk(user, ["ssh-config", "--install"]);
    const r = await doctor(user);
    expect(r.code, r.out).toBe(0);
    expect(r.find("ssh-config block")).toMatchObject({ status: "ok", detail: expect.stringContaining("all current") });
  });

  it("is red for an entry edited since, and green again after the hint's command", async () => {
    const text = readFileSync(sshConfig(), "utf8");
    writeFileSync(sshConfig(), text.replace(`  Port ${srv.sshPort}`, "  Port 1"));
    const r = await doctor(user);
    expect(r.code, r.out).toBe(1);
    const c = r.find("ssh-config block");
    expect(c.status).toBe("fail");
    expect(c.detail).toContain(`shed-${shed} (differs from what dev needs now)`);
    expect(c.hint).toBe("shed ssh-config --install --server dev");
    await cliOk(user, ["ssh-config", "--install", "--server", "dev"]);
    expect((await doctor(user)).code).toBe(0);
  });

  it("is red for an entry whose shed was deleted", async () => {
    await cliOk(user, ["delete", shed, "--force"]);
    const r = await doctor(user);
    expect(r.code, r.out).toBe(1);
    expect(r.find("ssh-config block").detail).toContain(`shed-${shed} (no shed ${shed} on dev)`);
  });
});
