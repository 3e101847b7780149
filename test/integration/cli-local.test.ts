import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { type CliUser, cliOk, json, newCliUser, REPO_ROOT, show } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { freePort, stopProcess } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer } from "../helpers/server.js";

/**
 * The CLI itself: its version, its code cache, and the local server it starts on demand (bin/shed -> dist/shed.cjs, or straight
 * to OpenSSH on the `shed exec` fast path) against real shed-servers on random
 * ports and the real Docker engine. Run `npm run build` first.
 */

/** A user with a test server added as `dev`, the default. */
let user: CliUser;
useCliServer((_server, cli) => {
  user = cli;
});

const localServerPids: number[] = [];
afterAll(async () => {
  for (const pid of localServerPids) await stopProcess(pid).catch(() => {});
});

describe("shed version", () => {
  test("prints the version", async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8"));
    expect((await cliOk(user, ["version"])).stdout).toBe(`shed ${version}\n`);
    expect(json(await cliOk(user, ["--json", "version"]))).toEqual({ version });
  });

  test("writes a code cache for each bundle it loads, named after the bundle it was made from", async () => {
    await cliOk(user, ["list"]); // the quick path (shed-quick.cjs)
    await cliOk(user, ["server", "list"]); // the full CLI (shed-main.cjs)
    const caches = readdirSync(join(REPO_ROOT, "dist"))
      .filter((f) => f.endsWith(".cache"))
      .sort();
    const named = (bundle: string) => {
      const hash = createHash("sha256")
        .update(readFileSync(join(REPO_ROOT, "dist", `${bundle}.cjs`)))
        .digest("hex");
      return `${bundle}.${hash.slice(0, 16)}.cache`;
    };
    expect(caches).toEqual([named("shed-main"), named("shed-quick")]);
    for (const cache of caches) expect(statSync(join(REPO_ROOT, "dist", cache)).size).toBeGreaterThan(10_000);
  });
});

describe("local server on demand", () => {
  test("with no server configured, shed list starts a local shed-server in the background and uses it", async () => {
    const [httpPort, sshPort] = [await freePort(), await freePort()];
    // A CA file that cannot be read: Node warns about it in every process that reads it at start-up.
    const u = newCliUser({
      SHED_LOCAL_HTTP_PORT: String(httpPort),
      SHED_LOCAL_SSH_PORT: String(sshPort),
      NODE_EXTRA_CA_CERTS: join(REPO_ROOT, "no-such-ca.pem"),
    });
    writeFileSync(u.configFile, "");
    const pidFile = join(u.dir, "local-server.pid");
    try {
      const first = await cliOk(u, ["list"]);
      expect(first.stderr).toContain("starting a local shed-server");
      // The CLI skipped the CA file (it trusts pinned certificates only); the server it started was given it.
      expect(first.stderr).not.toContain("no-such-ca.pem");
      expect(readFileSync(join(u.dir, "local-server.log"), "utf8")).toContain("no-such-ca.pem");
      expect(existsSync(pidFile)).toBe(true);
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      localServerPids.push(pid);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      expect(cmdline).toContain(join(REPO_ROOT, "dist", "shed-server.mjs"));

      const info = await (await fetch(`http://127.0.0.1:${httpPort}/api/info`)).json();
      expect(info).toMatchObject({ name: "local", http_port: httpPort, ssh_port: sshPort });
      const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
      expect(cfg.default_server).toBe("local");
      // Added with its token, made in its data dir before it started (0600), and marked as the CLI's own.
      const token = readFileSync(join(u.dir, "local-server", "data", "api_token"), "utf8").trim();
      expect(statSync(join(u.dir, "local-server", "data", "api_token")).mode & 0o777).toBe(0o600);
      expect(cfg.servers.local).toEqual({
        host: "127.0.0.1",
        http_port: httpPort,
        ssh_port: sshPort,
        host_key: info.ssh_host_key,
        token,
        local: true,
      });

      // The second time it is already there.
      const second = await cliOk(u, ["--json", "list"]);
      expect(second.stderr).not.toContain("starting");
      expect(Array.isArray(json(second).sheds)).toBe(true);
    } finally {
      if (existsSync(pidFile)) await stopProcess(Number(readFileSync(pidFile, "utf8").trim()));
    }
    const after = await fetch(`http://127.0.0.1:${httpPort}/api/info`).then(
      () => "answered",
      () => "refused",
    );
    expect(after).toBe("refused");
  });

  test("once it is gone (a reboot, a kill), the next command starts it again on the same data dir, and says so", async () => {
    const [httpPort, sshPort] = [await freePort(), await freePort()];
    const u = newCliUser({ SHED_LOCAL_HTTP_PORT: String(httpPort), SHED_LOCAL_SSH_PORT: String(sshPort) });
    const pidFile = join(u.dir, "local-server.pid");
    const name = uniqueName("revive");
    try {
      await cliOk(u, ["create", name, "--no-sync"]);
      localServerPids.push(Number(readFileSync(pidFile, "utf8").trim()));
      await stopProcess(Number(readFileSync(pidFile, "utf8").trim()));

      // `shed exec` too, though it usually goes straight to OpenSSH without Node (bin/shed).
      const exec = await cliOk(u, ["exec", name, "--", "echo", "back"]);
      expect(exec.stderr).toContain("the local shed-server is not running; starting it again");
      expect(exec.stdout).toBe("back\n");
      localServerPids.push(Number(readFileSync(pidFile, "utf8").trim()));
      const again = await cliOk(u, ["--json", "list"]);
      expect(again.stderr).not.toContain("starting");
      expect(json(again).sheds.map((s: { name: string }) => s.name)).toContain(name);

      // `shed list` too, though it usually runs the quick path, which does not start servers (boot.ts).
      await stopProcess(Number(readFileSync(pidFile, "utf8").trim()));
      const listed = await cliOk(u, ["--json", "list"]);
      expect(listed.stderr).toContain("the local shed-server is not running; starting it again");
      expect(json(listed).sheds.map((s: { name: string }) => s.name)).toContain(name);
      localServerPids.push(Number(readFileSync(pidFile, "utf8").trim()));
      // Its sheds are its own still: it can act on them.
      await cliOk(u, ["delete", name, "--force"]);
    } finally {
      if (existsSync(pidFile)) await stopProcess(Number(readFileSync(pidFile, "utf8").trim()));
    }
  });

  test("a config written before tokens (local entry without token or mark) keeps working: the token is added", async () => {
    const [httpPort, sshPort] = [await freePort(), await freePort()];
    const u = newCliUser({ SHED_LOCAL_HTTP_PORT: String(httpPort), SHED_LOCAL_SSH_PORT: String(sshPort) });
    const pidFile = join(u.dir, "local-server.pid");
    try {
      await cliOk(u, ["list"]);
      localServerPids.push(Number(readFileSync(pidFile, "utf8").trim()));
      const cfg = parseYaml(readFileSync(u.configFile, "utf8"));
      delete cfg.servers.local.token;
      delete cfg.servers.local.local;
      writeFileSync(u.configFile, stringifyYaml(cfg));

      const res = await cliOk(u, ["--json", "list"]);
      expect(Array.isArray(json(res).sheds)).toBe(true);
      const after = parseYaml(readFileSync(u.configFile, "utf8"));
      expect(after.servers.local.token).toBe(
        readFileSync(join(u.dir, "local-server", "data", "api_token"), "utf8").trim(),
      );
    } finally {
      if (existsSync(pidFile)) await stopProcess(Number(readFileSync(pidFile, "utf8").trim()));
    }
  });

  test("another shed-server answering on the local port is not adopted: the CLI says what answered and how to fix it", async () => {
    const other = await startTestServer();
    const u = newCliUser({ SHED_LOCAL_HTTP_PORT: String(other.httpPort) });
    const res = await u.run(["list"]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain(
      `a shed-server answers on 127.0.0.1:${other.httpPort}, but it does not accept this CLI's token`,
    );
    expect(res.stderr).toContain("SHED_LOCAL_HTTP_PORT");
    expect(existsSync(u.configFile) ? readFileSync(u.configFile, "utf8") : "").not.toContain("servers:\n  local");
  });
});
