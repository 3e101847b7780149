import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { type CliUser, cliOk, json, newCliUser, show, tempDir } from "../helpers/cli.js";
import { addServerAs, useCliServer } from "../helpers/cli-server.js";
import { containerExists, docker, volumeExists } from "../helpers/docker.js";
import { filesContaining } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import type { TestServer } from "../helpers/server.js";

/**
 * Bad input and secrets, through the packaged CLI (bin/shed -> dist/shed.cjs, or straight
 * to OpenSSH on the `shed exec` fast path) against real shed-servers on random
 * ports and the real Docker engine. Run `npm run build` first.
 */

let srv: TestServer;
/** The user most tests share: server `dev` (srv) added and the default. */
let user: CliUser;
useCliServer((server, cli) => {
  srv = server;
  user = cli;
});

describe("bad input gets a clear error and changes nothing", () => {
  async function expectRejected(
    u: CliUser,
    args: string[],
    name: string,
    expected: { code: string; message: string | RegExp },
  ): Promise<void> {
    const human = await u.run(args);
    expect(human.code, show(human)).toBe(1);
    expect(human.stdout).toBe("");
    if (typeof expected.message === "string") expect(human.stderr).toContain(expected.message);
    else expect(human.stderr).toMatch(expected.message);
    const asJson = await u.run(["--json", ...args]);
    expect(asJson.code, show(asJson)).toBe(1);
    expect(json(asJson).error.code).toBe(expected.code);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  }

  test("invalid shed name", async () => {
    await expectRejected(user, ["create", "Bad_Name"], "Bad_Name", {
      code: "INVALID_SHED_NAME",
      message: 'invalid shed name "Bad_Name"',
    });
    expect(await containerExists("bad_name")).toBe(false);
  });

  test("unknown backend", async () => {
    const name = uniqueName("kvm");
    await expectRejected(user, ["create", name, "--backend", "kvm"], name, {
      code: "INVALID_REQUEST",
      message: 'unknown backend "kvm"',
    });
  });

  test("--repo together with --local-dir", async () => {
    const name = uniqueName("both");
    const dir = tempDir("localdir");
    await expectRejected(user, ["create", name, "--repo", "https://example.invalid/x.git", "--local-dir", dir], name, {
      code: "INVALID_REQUEST",
      message: "--repo and --local-dir cannot be used together",
    });
  });

  test("a --local-dir that does not exist", async () => {
    const name = uniqueName("nodir");
    const missing = join(tempDir("parent"), "does-not-exist");
    await expectRejected(user, ["create", name, "--local-dir", missing], name, {
      code: "LOCAL_DIR_NOT_FOUND",
      message: missing,
    });
  });

  test("an unknown server", async () => {
    const name = uniqueName("nosrv");
    await expectRejected(user, ["--server", "nope", "create", name], name, {
      code: "SERVER_NOT_FOUND",
      message: 'no server named "nope"',
    });
    const exec = await user.run(["--server", "nope", "exec", name, "--", "true"]);
    expect(exec.code).toBe(1);
    expect(exec.stderr).toContain('no server named "nope"');
  });

  test("a malformed client config names file:line:col", async () => {
    const u = newCliUser();
    await addServerAs(u, srv, "dev");
    const valid = readFileSync(u.configFile, "utf8");
    const lines = valid.split("\n");
    // An unknown key on a known line: after the comment line, before the rest.
    const badLine = 2;
    writeFileSync(u.configFile, [lines[0], "colour: blue", ...lines.slice(1)].join("\n"));
    const name = uniqueName("badcfg");
    await expectRejected(u, ["create", name], name, {
      code: "INVALID_CONFIG",
      message: `${u.configFile}:${badLine}:1: colour: unknown field`,
    });
    const list = await u.run(["list"]);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain(`config.yaml:${badLine}:1`);
    // Nothing rewrote the broken file.
    expect(readFileSync(u.configFile, "utf8")).toContain("colour: blue");
  });
});

describe("repo URL with credentials", () => {
  test("a failed clone warns, the shed still runs, and the secret appears nowhere", async () => {
    const secret = "s3cr3t-token";
    const url = `https://user:${secret}@127.0.0.1:9/x.git`;
    const name = uniqueName("secret");
    const res = await cliOk(user, ["create", name, "--repo", url]);
    expect(res.stdout).toContain(`shed ${name}: running`);
    expect(res.stderr).toMatch(/warning \(clone\): .*git clone .*failed/);
    expect(res.stdout + res.stderr).not.toContain(secret);

    const list = await cliOk(user, ["--json", "list"]);
    expect(list.stdout).not.toContain(secret);
    const shed = json(list).sheds.find((s: { name: string }) => s.name === name);
    expect(shed.status).toBe("running");
    expect(shed.repo).toContain("127.0.0.1:9/x.git");
    expect(shed.warnings.join("\n")).toContain("clone");

    const showed = await cliOk(user, ["--json", "show", name]);
    expect(showed.stdout).not.toContain(secret);
    expect(filesContaining(srv.dir, secret)).toEqual([]);
    const inspect = await docker.getContainer(`shed-${name}`).inspect();
    expect(JSON.stringify(inspect)).not.toContain(secret);
    expect(JSON.stringify(inspect.Config.Labels)).toContain("127.0.0.1:9/x.git");
  });
});
