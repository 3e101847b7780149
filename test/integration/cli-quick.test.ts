import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { type CliUser, cliOk, json, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { freePort } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import type { TestServer } from "../helpers/server.js";

/**
 * `shed list`, `shed start|stop NAME` and `shed delete NAME -f` run the quick
 * path (src/cli/quick.ts; boot.ts picks it from the argv; quick-argv.test.ts
 * proves which argv go there): the packaged CLI against a real shed-server and
 * Docker. `stop -- NAME` is the same command to commander but not to the quick
 * path, so it runs the full CLI for comparison. What it prints
 * must be what the full CLI prints; the hand-back to the full CLI (the local
 * server started or revived) is in cli-local.test.ts. Run `npm run build` first.
 */

let server: TestServer;
let user: CliUser;
useCliServer((s, u) => {
  server = s;
  user = u;
});

describe("shed list (quick path)", () => {
  test("--json is the server's list with each shed's server added; the table is in name order", async () => {
    const names = [uniqueName("quick-b"), uniqueName("quick-a")];
    for (const name of names) {
      const made = await server.api("POST", "/api/sheds", { name, no_provision: true });
      expect(made.status, JSON.stringify(made.body)).toBeLessThan(300);
    }
    const fromApi = (await server.api("GET", "/api/sheds")).body.sheds as { name: string }[];
    expect(fromApi.map((s) => s.name)).toEqual(expect.arrayContaining(names));

    const listed = await cliOk(user, ["--json", "list"]);
    expect(json(listed)).toEqual({ sheds: fromApi.map((s) => ({ ...s, server: "dev" })) });
    expect(listed.stderr).toBe("");
    // The same with the options after the command, and through the alias.
    expect(json(await cliOk(user, ["ls", "--json"]))).toEqual(json(listed));

    const table = (await cliOk(user, ["list"])).stdout.trimEnd().split("\n");
    expect(table[0]).toMatch(/^NAME +STATUS +SERVER +BACKEND +IMAGE +CREATED +SOURCE$/);
    const rows = table.slice(1).map((line) => line.split(/ +/));
    expect(rows.map((r) => r[0])).toEqual([...names].sort());
    for (const r of rows) expect(r.slice(1, 4)).toEqual(["running", "dev", "docker"]);
  });

  test("its errors are the full CLI's: the same words on stdout and stderr, the same exit code", async () => {
    const dir = tempDir("quick-errors");
    const good = parseYaml(readFileSync(user.configFile, "utf8"));
    // A server entry whose port nobody listens on.
    const unreachable = join(dir, "unreachable.yaml");
    writeFileSync(
      unreachable,
      stringifyYaml({ ...good, servers: { dev: { ...good.servers.dev, http_port: await freePort() } } }),
    );
    const invalid = join(dir, "invalid.yaml");
    writeFileSync(invalid, "servers:\n  dev:\n    http_port: eighty\n");

    for (const [global, code] of [
      [["--server", "nope"], "SERVER_NOT_FOUND"],
      [["--config", unreachable], "SERVER_UNREACHABLE"],
      [["--config", invalid], "INVALID_CONFIG"],
    ] as const) {
      for (const asJson of [true, false]) {
        const opts = asJson ? ["--json", ...global] : [...global];
        const quick = await user.run([...opts, "list"]);
        // `show` runs the full CLI and fails the same way before it asks for the shed.
        const full = await user.run([...opts, "show", "x"]);
        expect(quick.code, show(quick)).toBe(1);
        expect({ stdout: quick.stdout, stderr: quick.stderr }).toEqual({ stdout: full.stdout, stderr: full.stderr });
        if (asJson) expect(json(quick).error.code).toBe(code);
        else expect(quick.stdout).toBe("");
      }
    }
  });
});

describe("start, stop and delete (quick path)", () => {
  /** Step lines without their durations, which differ between runs. */
  const steps = (stderr: string) => stderr.replace(/\([0-9.]+m?s\)/g, "(T)");

  test("print what the full CLI prints, and do the same", async () => {
    const name = uniqueName("quick-life");
    const made = await server.api("POST", "/api/sheds", { name, no_provision: true });
    expect(made.status, JSON.stringify(made.body)).toBeLessThan(300);
    const status = async () => (await server.api("GET", `/api/sheds/${name}`)).body.status;

    const quickStop = await cliOk(user, ["stop", name]);
    expect(quickStop.stdout).toBe(`stopped ${name}\n`);
    expect(await status()).toBe("stopped");
    const fullStart = await cliOk(user, ["start", "--", name]);
    expect(fullStart.stdout).toBe(`started ${name}\n`);
    const quickStart = await cliOk(user, ["stop", name]).then(() => cliOk(user, ["start", name]));
    expect(steps(quickStart.stderr)).toBe(steps(fullStart.stderr));
    expect(await status()).toBe("running");

    const quickJson = json(await cliOk(user, ["--json", "stop", name]));
    const fullJson = json(await cliOk(user, ["start", "--json", "--", name]));
    expect(quickJson.name).toBe(name);
    expect(quickJson.status).toBe("stopped");
    expect(Object.keys(quickJson).sort()).toEqual(Object.keys(fullJson).sort());

    const deleted = await cliOk(user, ["--json", "delete", name, "--force"]);
    expect(json(deleted)).toEqual({ deleted: name, kept_volume: false });
    expect((await server.api("GET", `/api/sheds/${name}`)).status).toBe(404);
  });

  test("their errors are the full CLI's", async () => {
    const missing = uniqueName("quick-missing");
    const pairs: [string[], string[]][] = [
      [
        ["stop", missing],
        ["stop", "--", missing],
      ],
      [
        ["--json", "start", missing],
        ["--json", "start", "--", missing],
      ],
      [
        ["delete", "-f", missing],
        ["delete", "-f", "--", missing],
      ],
    ];
    for (const [quick, full] of pairs) {
      const q = await user.run(quick);
      const f = await user.run(full);
      expect(q.code, show(q)).toBe(1);
      expect({ stdout: q.stdout, stderr: q.stderr }).toEqual({ stdout: f.stdout, stderr: f.stderr });
    }
  });
});
