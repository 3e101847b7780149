import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { type CliUser, cliOk, json, newCliUser, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker } from "../helpers/docker.js";
import { fakeShed } from "../helpers/fake-shed.js";
import { makeGitRepo } from "../helpers/host.js";
import { runProcess } from "../helpers/host-tmux.js";
import { uniqueName } from "../helpers/names.js";
import type { TestServer } from "../helpers/server.js";

/**
 * What a server sends is untrusted in the CLI: shed names are checked before
 * they reach ~/.ssh/config or ssh, and text from a server reaches the terminal
 * with its control characters shown escaped. Through the packaged CLI against
 * a real shed-server on the real Docker engine, real OpenSSH; and against a
 * hostile HTTP server on loopback that answers with whatever an attacker would.
 * Run `npm run build` first.
 */

/** Any byte a terminal acts on, other than a line break. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

let srv: TestServer;
let user: CliUser;
useCliServer((server, cli) => {
  srv = server;
  user = cli;
});

describe("a container labelled as a shed with a name that injects ssh config", () => {
  const marker = join(tempDir("pwned"), "pwned");
  const evilName = `x\nHost *\n  ProxyCommand touch ${marker}`;
  let good: string;

  beforeAll(async () => {
    good = uniqueName("good");
    await cliOk(user, ["create", good, "--no-sync"]);
    // What the server reads a shed from (src/backends/docker: the labels), written by hand; with this
    // server's id where servers label their sheds with one, so that it lists this container as its own.
    const idFile = join(srv.dir, "data", "server_id");
    const labels: Record<string, string> = {
      "dev.shed.managed": "true",
      "dev.shed.name": evilName,
      "dev.shed.backend": "docker",
      "dev.shed.image": "shed-base:latest",
      "dev.shed.created-at": new Date().toISOString(),
      ...(existsSync(idFile) ? { "dev.shed.server-id": readFileSync(idFile, "utf8").trim() } : {}),
    };
    const container = await docker.createContainer({
      name: `shed-${uniqueName("evil")}`,
      Image: "shed-base:latest",
      Entrypoint: [],
      Cmd: ["sleep", "infinity"],
      Labels: labels,
    });
    await container.start();
    // The server really sends it: the CLI is what has to refuse it.
    const listed = await srv.api("GET", "/api/sheds");
    expect(listed.body.sheds.map((s: { name: string }) => s.name)).toContain(evilName);
  });

  test("shed list leaves it out, with a warning that shows the name escaped", async () => {
    const res = await cliOk(user, ["list"]);
    expect(res.stdout).toContain(good);
    expect(res.stdout).not.toContain("ProxyCommand");
    expect(res.stderr).toContain('left out a shed has an invalid name "x\\nHost *\\n  ProxyCommand touch');
    expect(res.stdout + res.stderr).not.toMatch(RAW_CONTROL);
    const names = json(await cliOk(user, ["--json", "list"])).sheds.map((s: { name: string }) => s.name);
    expect(names).toContain(good);
    expect(names).not.toContain(evilName);
  });

  test("shed ssh-config prints only valid entries, and --install never writes the injected lines", async () => {
    const printed = await cliOk(user, ["ssh-config"]);
    expect(printed.stdout).toContain(`Host shed-${good}\n`);
    expect(printed.stdout).not.toContain("ProxyCommand");
    expect(printed.stdout).not.toContain("Host *");

    const installed = await cliOk(user, ["ssh-config", "--install"]);
    expect(installed.stdout).toMatch(new RegExp(`installed (.*, )?shed-${good}[, ]`));
    const file = join(user.dir, ".ssh", "config");
    const config = readFileSync(file, "utf8");
    expect(config).toContain(`Host shed-${good}\n`);
    expect(config).not.toContain("ProxyCommand");
    expect(config).not.toMatch(/^Host \*/m);

    // OpenSSH with that file connects to the good shed, and no injected command ran.
    const ssh = await runProcess(
      ["ssh", "-F", file, "-o", "BatchMode=yes", `shed-${good}`, "echo", "connected"],
      user.env,
    );
    expect(ssh.status, ssh.stderr).toBe(0);
    expect(ssh.stdout).toBe("connected\n");
    expect(existsSync(marker)).toBe(false);
  });
});

describe("text from a real server reaches the terminal escaped", () => {
  test("an error message with control characters", async () => {
    const dir = `/nonexistent-${uniqueName("dir")}/\x1b[31mred\x07\x1b]0;title\x07`;
    const res = await user.run(["create", uniqueName("esc"), "--local-dir", dir, "--no-sync"]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toMatch(/^error: /);
    expect(res.stderr).toContain("\\x1b[31mred\\x07\\x1b]0;title\\x07");
    expect(res.stderr).not.toMatch(RAW_CONTROL);
  });

  test("a failed hook's warning and `shed status` show its last lines escaped; its live output stays raw", async () => {
    const repo = makeGitRepo({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh": "#!/bin/sh\nprintf 'colour \\033[32mgreen\\033[0m title \\033]0;pwned\\007\\n'\nexit 3\n",
    });
    const name = uniqueName("hookesc");
    const res = await cliOk(user, ["create", name, "--repo", repo, "--no-sync"]);
    // The hook's own output, as it ran: raw, like ssh and docker exec print a program's output.
    expect(res.stderr).toContain("colour \x1b[32mgreen\x1b[0m");
    // What the server says about it: escaped.
    const warning = res.stderr.split("\n").find((l) => l.includes("warning (install_hook)"));
    expect(warning, res.stderr).toBeDefined();
    expect(warning).not.toMatch(RAW_CONTROL);
    const status = await cliOk(user, ["status", name]);
    expect(status.stdout).toContain("colour \\x1b[32mgreen\\x1b[0m title \\x1b]0;pwned\\x07");
    expect(status.stdout).not.toMatch(RAW_CONTROL);
  });
});

describe("a hostile server", () => {
  let hostile: Server;
  let port: number;
  const badKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n@cert-authority * ssh-ed25519 AAAAattacker";
  const injected = "x\nHost *\n  ProxyCommand touch /tmp/never";

  beforeAll(async () => {
    hostile = createServer((req, res) => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.url === "/api/info") {
        return send(200, { name: "evil", version: "9", http_port: port, ssh_port: 2222, ssh_host_key: badKey });
      }
      if (req.url === "/api/keys") return send(200, {});
      if (req.method === "GET" && req.url === "/api/sheds") {
        const shed = fakeShed;
        return send(200, {
          sheds: [shed("fine", { image: "img\x1b[2J\nforged line", warnings: ["w\x1b]0;t\x07"] }), shed(injected)],
        });
      }
      return send(500, {
        error: { code: "INTERNAL", message: "boom \x1b]0;pwned\x07\x1b[2J\rdone", hint: "\x1b[31mred\x1b[0m" },
      });
    });
    await new Promise<void>((r) => hostile.listen(0, "127.0.0.1", r));
    port = (hostile.address() as { port: number }).port;
  });

  afterAll(() => new Promise<void>((r) => hostile.close(() => r())));

  /** A CLI user whose config names the hostile server (as if it had been added before it turned). */
  function userOfHostile(): CliUser {
    const u = newCliUser();
    const entry = { host: "127.0.0.1", http_port: port, ssh_port: 2222, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5" };
    writeFileSync(
      u.configFile,
      stringify({ default_server: "evil", servers: { evil: { ...entry, token: "t".repeat(32) } } }),
    );
    return u;
  }

  test("`shed server add` refuses an SSH host key that is not one, and writes nothing", async () => {
    const u = newCliUser();
    const res = await u.run(["server", "add", "127.0.0.1", "--port", String(port)], {
      env: { SHED_TOKEN: "t".repeat(32) },
    });
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toContain("sent ssh_host_key");
    expect(res.stderr).toContain("which is not an SSH public host key");
    expect(res.stderr).not.toMatch(RAW_CONTROL);
    for (const f of ["config.yaml", "ssh_config", "known_hosts"]) {
      const file = join(u.dir, f);
      if (existsSync(file)) expect(readFileSync(file, "utf8")).not.toContain("@cert-authority");
    }
  });

  test("its error message and hint are shown escaped", async () => {
    const u = userOfHostile();
    const res = await u.run(["show", "fine"]);
    expect(res.code, show(res)).toBe(1);
    expect(res.stderr).toBe("error: boom \\x1b]0;pwned\\x07\\x1b[2J\\rdone\nhint: \\x1b[31mred\\x1b[0m\n");
  });

  test("its list: the injected name is left out, and control characters in fields are escaped", async () => {
    const u = userOfHostile();
    const res = await cliOk(u, ["list"]);
    expect(res.stdout).toContain("img\\x1b[2J\\nforged line");
    expect(res.stdout.split("\n").filter((l) => l.includes("forged"))).toHaveLength(1);
    expect(res.stdout).not.toContain("ProxyCommand");
    expect(res.stdout + res.stderr).not.toMatch(RAW_CONTROL);
    const install = await cliOk(u, ["ssh-config", "--install"]);
    expect(install.stderr).toContain("left out a shed has an invalid name");
    const config = readFileSync(join(u.dir, ".ssh", "config"), "utf8");
    expect(config).toContain("Host shed-fine\n");
    expect(config).not.toContain("ProxyCommand");
  });
});
