// Time budget: ~3 min (three Docker sheds, each tunnel a real OpenSSH client against a real shed-server).
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type CliUser, cliOk, json, SHED_BIN, show } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";

/**
 * `shed tunnels`: the packaged CLI, a real shed-server, the Docker engine and
 * the OpenSSH client. A small HTTP server (nc in a loop) runs in each shed on
 * its loopback; the host reaches it only through a tunnel on 127.0.0.1.
 */

let user: CliUser;
useCliServer((_server, cli) => {
  user = cli;
});

const WEB_PORT = 8080;
const sheds = { a: uniqueName("tun-a"), b: uniqueName("tun-b"), c: uniqueName("tun-c") };
const foreground: ChildProcess[] = [];

/** An HTTP server on the shed's 127.0.0.1:port answering `body`; resolves once the kernel lists it listening. */
async function serveInShed(shed: string, port: number, body: string): Promise<void> {
  const script = [
    'nohup bash -c \'while :; do printf "HTTP/1.0 200 OK\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s" "$3" "$2" | nc -l -q 1 127.0.0.1 "$1"; done\' web "$1" "$2" "$3" >/dev/null 2>&1 &',
    'hex=$(printf %04X "$1")',
    'for i in $(seq 200); do grep -q " 0100007F:$hex 00000000:0000 0A " /proc/net/tcp && exit 0; sleep 0.05; done',
    "exit 1",
  ].join("\n");
  const res = await dockerExec(shed, [
    "bash",
    "-c",
    script,
    "serve",
    String(port),
    body,
    String(Buffer.byteLength(body)),
  ]);
  expect(res.code, res.stderr).toBe(0);
}

/** One GET of http://127.0.0.1:port/ from the host: the body, or undefined when the connection failed or closed. */
function get(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/", timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString()));
      res.on("error", () => resolve(undefined));
    });
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** GETs until one answers (nc is between two connections for a moment), within a deadline. */
async function fetchThrough(port: number): Promise<string | undefined> {
  const end = Date.now() + 20_000;
  for (;;) {
    const body = await get(port);
    if (body !== undefined || Date.now() > end) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A loopback port free right now (the kernel's pick). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ host: "127.0.0.1", port: 0 }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Whether 127.0.0.1:port can be listened on (nothing holds it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen({ host: "127.0.0.1", port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function waitUntil(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function listed(): Promise<any[]> {
  return json(await cliOk(user, ["--json", "tunnels", "list"])).tunnels;
}

async function shedStatus(name: string): Promise<string> {
  return (await docker.getContainer(`shed-${name}`).inspect()).State.Running ? "running" : "stopped";
}

beforeAll(async () => {
  await Promise.all(Object.values(sheds).map((s) => cliOk(user, ["create", s])));
  await Promise.all([
    serveInShed(sheds.a, WEB_PORT, `hello from ${sheds.a}`),
    serveInShed(sheds.b, WEB_PORT, `hello from ${sheds.b}`),
  ]);
}, 150_000);

afterAll(async () => {
  for (const child of foreground) child.kill("SIGKILL");
  // Background ssh processes hold SSH connections, which the test server's close waits for.
  await user.run(["tunnels", "stop", "--all"]);
});

describe("shed tunnels", () => {
  test("a foreground tunnel reaches a web server in the shed over 127.0.0.1, and ends with the command", async () => {
    const port = await freePort();
    const child = spawn(SHED_BIN, ["tunnels", "start", sheds.a, "-t", `${port}:${WEB_PORT}`], {
      env: user.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    foreground.push(child);
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    await waitUntil("the tunnel to be up", () => out.includes("forwarding until Ctrl-C") || child.exitCode !== null);
    expect(out).toContain(`127.0.0.1:${port} -> ${sheds.a}:${WEB_PORT}`);

    expect(await fetchThrough(port)).toBe(`hello from ${sheds.a}`);
    const rows = (await listed()).filter((t) => t.shed === sheds.a);
    expect(rows).toMatchObject([{ local: port, remote: WEB_PORT, status: "active", background: false }]);

    child.kill("SIGINT");
    expect(await exited, out).toBe(0);
    // Only what the CLI says: OpenSSH at INFO adds nothing on a forward that works.
    expect(out).toBe(`127.0.0.1:${port} -> ${sheds.a}:${WEB_PORT}\nforwarding until Ctrl-C\n`);
    expect((await listed()).filter((t) => t.shed === sheds.a)).toEqual([]);
    expect(await portFree(port)).toBe(true);
  });

  test("a background tunnel outlives its command; list checks it; stop ends it and frees the port", async () => {
    const port = await freePort();
    const res = await cliOk(user, ["--json", "tunnels", "start", sheds.a, "-t", `${port}:${WEB_PORT}`, "--background"]);
    const started = json(res);
    expect(started).toMatchObject({ shed: sheds.a, background: true, tunnels: [{ local: port, remote: WEB_PORT }] });
    const pid: number = started.pid;
    // The command has exited: what answers now is the background ssh.
    expect(await fetchThrough(port)).toBe(`hello from ${sheds.a}`);
    expect(pidAlive(pid)).toBe(true);

    const human = await cliOk(user, ["tunnels", "list"]);
    expect(human.stdout).toMatch(/SHED\s+LOCAL\s+REMOTE\s+STATUS/);
    expect(human.stdout).toMatch(new RegExp(`${sheds.a}\\s+127\\.0\\.0\\.1:${port}\\s+${WEB_PORT}\\s+active`));

    const stopped = json(await cliOk(user, ["--json", "tunnels", "stop", sheds.a]));
    expect(stopped.stopped).toMatchObject([{ shed: sheds.a, local: port, pid }]);
    expect(pidAlive(pid)).toBe(false);
    expect(await portFree(port)).toBe(true);
    expect((await listed()).filter((t) => t.shed === sheds.a)).toEqual([]);
  });

  test("list says dead, not active, for a tunnel whose ssh was killed", async () => {
    const port = await freePort();
    const { pid } = json(
      await cliOk(user, ["--json", "tunnels", "start", sheds.a, "-t", `${port}:${WEB_PORT}`, "--background"]),
    );
    process.kill(pid, "SIGKILL");
    await waitUntil("ssh to be gone", () => !pidAlive(pid));
    expect((await listed()).filter((t) => t.shed === sheds.a)).toMatchObject([{ local: port, status: "dead" }]);
    await cliOk(user, ["tunnels", "stop", sheds.a]);
    expect((await listed()).filter((t) => t.shed === sheds.a)).toEqual([]);
  });

  test("a port held by another program or by another shed's tunnel is refused, naming it, before anything starts", async () => {
    const [free, taken, byB] = [await freePort(), await freePort(), await freePort()];
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen({ host: "127.0.0.1", port: taken }, r));
    try {
      const res = await user.run([
        "--json",
        "tunnels",
        "start",
        sheds.a,
        "-t",
        String(free),
        "-t",
        String(taken),
        "--background",
      ]);
      expect(res.code, show(res)).toBe(1);
      expect(json(res).error).toMatchObject({ code: "PORT_IN_USE", details: { port: taken } });
      expect(json(res).error.message).toContain(
        `local port ${taken} (127.0.0.1:${taken}) is in use by another program`,
      );
    } finally {
      await new Promise((r) => holder.close(r));
    }
    // The free port of the refused start was not taken either.
    expect(await portFree(free)).toBe(true);

    await cliOk(user, ["tunnels", "start", sheds.b, "-t", `${byB}:${WEB_PORT}`, "--background"]);
    const human = await user.run([
      "tunnels",
      "start",
      sheds.a,
      "-t",
      `${free}:${WEB_PORT}`,
      "-t",
      `${byB}:${WEB_PORT}`,
      "--background",
    ]);
    expect(human.code, show(human)).toBe(1);
    expect(human.stderr).toContain(`local port ${byB} is already forwarded by a tunnel of shed ${sheds.b}`);
    expect(human.stderr).toContain(`shed tunnels stop ${sheds.b}`);
    expect(await portFree(free)).toBe(true);
    expect((await listed()).map((t) => [t.shed, t.local])).toEqual([[sheds.b, byB]]);
    // B's tunnel still works.
    expect(await fetchThrough(byB)).toBe(`hello from ${sheds.b}`);
  });

  test("two starts at once for one shed both land in the state file, on its one ssh process", async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const [r1, r2] = await Promise.all([
      user.run(["--json", "tunnels", "start", sheds.a, "-t", `${p1}:${WEB_PORT}`, "--background"]),
      user.run(["--json", "tunnels", "start", sheds.a, "-t", `${p2}:${WEB_PORT}`, "--background"]),
    ]);
    expect(r1.code, show(r1)).toBe(0);
    expect(r2.code, show(r2)).toBe(0);
    const rows = (await listed()).filter((t) => t.shed === sheds.a);
    expect(rows.map((t) => t.local).sort()).toEqual([p1, p2].sort());
    expect(rows.every((t) => t.status === "active")).toBe(true);
    expect(new Set(rows.map((t) => t.pid)).size).toBe(1);
    expect(await fetchThrough(p1)).toBe(`hello from ${sheds.a}`);
    expect(await fetchThrough(p2)).toBe(`hello from ${sheds.a}`);

    // --replace: the shed's tunnels are these now.
    const p3 = await freePort();
    await cliOk(user, ["tunnels", "start", sheds.a, "-t", `${p3}:${WEB_PORT}`, "--background", "--replace"]);
    expect((await listed()).filter((t) => t.shed === sheds.a).map((t) => t.local)).toEqual([p3]);
    expect(await portFree(p1)).toBe(true);
    expect(await fetchThrough(p3)).toBe(`hello from ${sheds.a}`);

    // A --replace refused for a conflict leaves the shed's tunnels as they were.
    const taken = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen({ host: "127.0.0.1", port: taken }, r));
    try {
      const res = await user.run([
        "tunnels",
        "start",
        sheds.a,
        "-t",
        String(p3),
        "-t",
        String(taken),
        "--background",
        "--replace",
      ]);
      expect(res.code, show(res)).toBe(1);
      expect(res.stderr).toContain(`local port ${taken} (127.0.0.1:${taken}) is in use by another program`);
    } finally {
      await new Promise((r) => holder.close(r));
    }
    expect((await listed()).filter((t) => t.shed === sheds.a)).toMatchObject([{ local: p3, status: "active" }]);
    expect(await fetchThrough(p3)).toBe(`hello from ${sheds.a}`);
  });

  test("shed stop ends the shed's tunnels first; a forward never starts a stopped shed, a session does", async () => {
    const port = await freePort();
    const { pid } = json(
      await cliOk(user, ["--json", "tunnels", "start", sheds.c, "-t", `${port}:${WEB_PORT}`, "--background"]),
    );
    await cliOk(user, ["stop", sheds.c]);
    expect(pidAlive(pid)).toBe(false);
    expect(await portFree(port)).toBe(true);
    expect((await listed()).filter((t) => t.shed === sheds.c)).toEqual([]);

    const refused = await user.run(["--json", "tunnels", "start", sheds.c, "-t", String(port), "--background"]);
    expect(refused.code, show(refused)).toBe(1);
    expect(json(refused).error.message).toContain(`shed ${sheds.c} is stopped: tunnels do not start it`);

    // Plain OpenSSH with the CLI's ssh_config: the server refuses each forwarded connection, saying why, and
    // leaves the shed stopped. (LogLevel INFO: OpenSSH prints a refused forward's reason from there up.)
    const ssh = spawn(
      "ssh",
      [
        ...["-F", join(user.dir, "ssh_config"), "-o", "ControlPath=none", "-o", "LogLevel=INFO"],
        ...["-o", "ExitOnForwardFailure=yes", "-N", "-l", sheds.c, "-L", `127.0.0.1:${port}:localhost:${WEB_PORT}`],
        "shed.dev",
      ],
      { env: user.env, stdio: ["ignore", "ignore", "pipe"] },
    );
    foreground.push(ssh);
    let err = "";
    ssh.stderr?.on("data", (c: Buffer) => {
      err += c.toString();
    });
    await waitUntil("ssh -L to listen", async () => !(await portFree(port)));
    expect(await get(port)).toBeUndefined();
    await waitUntil("ssh to report the refusal", () => err.includes("open failed"));
    expect(err).toContain(`shed "${sheds.c}" is stopped`);
    expect(err).toContain("port forwards do not start a shed");
    ssh.kill("SIGTERM");
    expect(await shedStatus(sheds.c)).toBe("stopped");

    await cliOk(user, ["exec", sheds.c, "--", "true"]);
    expect(await shedStatus(sheds.c)).toBe("running");
  });

  test("shed delete (the quick path's --force included) stops the shed's tunnels first", async () => {
    const rows = (await listed()).filter((t) => t.shed === sheds.b);
    expect(rows.length).toBeGreaterThan(0);
    await cliOk(user, ["delete", sheds.b, "--force"]);
    expect((await listed()).filter((t) => t.shed === sheds.b)).toEqual([]);
    for (const r of rows) {
      expect(pidAlive(r.pid)).toBe(false);
      expect(await portFree(r.local)).toBe(true);
    }
  });

  test("profiles from the client config are merged with -t; config previews them", async () => {
    const cfg = readFileSync(user.configFile, "utf8");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(user.configFile, `${cfg}tunnels:\n  web: ["3000", "15432:5432"]\n  extra: [9000]\n`);
    try {
      const res = json(
        await cliOk(user, ["--json", "tunnels", "config", sheds.a, "-p", "web", "-p", "extra", "-t", "8081:80"]),
      );
      expect(res.tunnels).toEqual([
        { local: 3000, remote: 3000, from: "profile web" },
        { local: 15432, remote: 5432, from: "profile web" },
        { local: 9000, remote: 9000, from: "profile extra" },
        { local: 8081, remote: 80, from: "-t 8081:80" },
      ]);
      const clash = await user.run(["tunnels", "config", sheds.a, "-p", "web", "-t", "3000:3001"]);
      expect(clash.code).toBe(1);
      expect(clash.stderr).toContain(
        "local port 3000 is mapped twice: to 3000 (profile web) and to 3001 (-t 3000:3001)",
      );

      writeFileSync(user.configFile, `${cfg}tunnels:\n  web: ["3000", "70000:1"]\n`);
      const bad = await user.run(["tunnels", "config", sheds.a, "-p", "web"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/config\.yaml:\d+:\d+/);
      expect(bad.stderr).toContain("not a tunnel mapping");
    } finally {
      writeFileSync(user.configFile, cfg);
    }
  });
});
