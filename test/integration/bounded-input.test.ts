// Budget: about 90 s on 2 cores (five small sheds on the real engine, a daemon writing ~40 MB; the rest is HTTP).
import { existsSync, readdirSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DockerGuestExec } from "../../src/backends/docker/docker-exec.js";
import type { GuestExec } from "../../src/guest/exec.js";
import { runHook } from "../../src/guest/hook-runner.js";
import type { CliUser } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import {
  createLocal,
  guestFile,
  hooksOf,
  op,
  outputOf,
  resultOf,
  waitFor,
  warningsOf,
  workspace,
  writeFiles,
} from "../helpers/provision.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Each limit of issue 9's "bounded input" against a real server: a clear error naming it, nothing left half-made. */

function bundlesIn(server: TestServer): string[] {
  const dir = join(server.dir, "data", "bundles");
  return existsSync(dir) ? readdirSync(dir) : [];
}

interface Upload {
  /** Resolves with the response (status and body) when the server answers. */
  response: Promise<{ status: number; body: string }>;
  write(bytes: Buffer): Promise<void>;
  end(): void;
  /** The client goes away mid-upload. */
  abort(): void;
}

/** A real streaming PUT /api/bundles (chunked unless `length` is given), written piece by piece. */
function upload(server: TestServer, length?: number): Upload {
  const req = request(`${server.base}/api/bundles`, {
    method: "PUT",
    headers: {
      authorization: `Bearer ${server.token}`,
      "content-type": "application/octet-stream",
      ...(length === undefined ? {} : { "content-length": String(length) }),
    },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
  response.catch(() => {});
  req.flushHeaders();
  return {
    response,
    write: (bytes) => new Promise((resolve) => req.write(bytes, () => resolve())),
    end: () => req.end(),
    abort: () => req.destroy(),
  };
}

describe("bundle uploads", () => {
  it("an upload over max_bundle_size gets 413 naming the setting, declared or as it arrives, and leaves no file", async () => {
    const server = await startTestServer({ max_bundle_size: "4KiB" });

    const declared = upload(server, 8192);
    const refused = await declared.response;
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: "PAYLOAD_TOO_LARGE" });
    expect(JSON.parse(refused.body).error.message).toContain(
      "(8 KiB) is larger than this server's max_bundle_size (4 KiB)",
    );
    expect(bundlesIn(server)).toEqual([]);

    // Chunked: no length to refuse up front; refused once more than the cap has arrived.
    const chunked = upload(server);
    for (let i = 0; i < 8; i++) await chunked.write(Buffer.alloc(1024, 0x61));
    chunked.end();
    const late = await chunked.response;
    expect(late.status).toBe(413);
    expect(JSON.parse(late.body).error.message).toContain("max_bundle_size");
    expect(bundlesIn(server)).toEqual([]);

    // Within the cap it is taken.
    const small = upload(server);
    await small.write(Buffer.alloc(4096, 0x62));
    small.end();
    const ok = await small.response;
    expect(ok.status).toBe(201);
    expect(bundlesIn(server)).toEqual([`${JSON.parse(ok.body).id}.bundle`]);
    await server.close();
  });

  it("an upload whose client goes away mid-way is removed at once", async () => {
    const server = await startTestServer({ max_bundle_size: "1MiB" });
    const partial = upload(server);
    await partial.write(Buffer.alloc(64 * 1024, 0x63));
    await waitFor("the partial upload on disk", async () => bundlesIn(server).some((f) => f.endsWith(".part")));
    partial.abort();
    await waitFor("the partial upload removed", async () => bundlesIn(server).length === 0);
    await server.close();
  });

  it("a complete upload that no create uses is swept after bundle_max_age, with no upload to trigger it", async () => {
    const server = await startTestServer({ bundle_max_age: "1s" });
    const unused = upload(server);
    await unused.write(Buffer.from("# v2 git bundle\n"));
    unused.end();
    expect((await unused.response).status).toBe(201);
    expect(bundlesIn(server)).toHaveLength(1);
    await waitFor("the unused bundle swept", async () => bundlesIn(server).length === 0);
    await server.close();
  });
});

/** A server whose hook logs are rotated at 64 KiB, with a CLI user, for the rest of the file. */
const LOG_CAP = 64 * 1024;
let server: TestServer;
let cli: CliUser;
useCliServer(
  (s, u) => {
    server = s;
    cli = u;
  },
  { hook_log_max_size: "64KiB" },
);

describe("provision.yaml limits", () => {
  it("a file over 1 MiB is a warning naming it and the cap, and is never read whole; one of exactly 1 MiB is read", async () => {
    const name = uniqueName("bigprov");
    const yaml = "hooks:\n  startup: startup.sh\n";
    const pad = (size: number) => `${yaml}#${"x".repeat(size - yaml.length - 2)}\n`;
    const dir = workspace({
      ".shed/provision.yaml": pad(1024 * 1024),
      // The hook makes the file 20 GB (sparse) for the next start and stop to read.
      "startup.sh": "#!/bin/bash\necho started\ntruncate -s 20G /workspace/.shed/provision.yaml\n",
    });
    const { events } = await createLocal(server, name, dir);
    expect(warningsOf(events)).toEqual([]);
    expect(outputOf(events, "startup_hook")).toBe("started\n");

    const stop = await op(server, "POST", `/api/sheds/${name}/stop`);
    resultOf(stop);
    const warned = warningsOf(stop, "provision_file");
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain(".shed/provision.yaml:1:1:");
    expect(warned[0]).toContain("larger than 1 MiB");
    const start = await op(server, "POST", `/api/sheds/${name}/start`);
    expect(resultOf(start).status).toBe("running");
    expect(warningsOf(start, "provision_file")[0]).toContain("larger than 1 MiB");
    // Nothing of the file applied: the startup hook was not run.
    expect(outputOf(start, "startup_hook")).toBe("");
    expect((await getWarnings(name)).join("\n")).toContain("larger than 1 MiB");
  });

  it("an alias bomb is a warning naming the file and line; a hook path like ..tools/x is inside the workspace", async () => {
    const name = uniqueName("aliasprov");
    const row = (anchor: string, of: string) => `${anchor}: &${anchor} [${Array(9).fill(of).join(", ")}]`;
    const bomb = ["hooks:", "  install: ..tools/install.sh", row("a", '"lol"'), row("b", "*a"), row("c", "*b")];
    const dir = workspace({
      ".shed/provision.yaml": `${bomb.join("\n")}\n${row("d", "*c")}\n${row("e", "*d")}\n`,
      "..tools/install.sh": "#!/bin/bash\necho tools-install\n",
    });
    const { events } = await createLocal(server, name, dir);
    const warned = warningsOf(events, "provision_file");
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^\.shed\/provision\.yaml:4:\d+: .*alias/i);

    writeFiles(dir, { ".shed/provision.yaml": "hooks:\n  install: ..tools/install.sh\n" });
    const run = await op(server, "POST", `/api/sheds/${name}/provision`, { hook: "install" });
    expect(warningsOf(run)).toEqual([]);
    expect(outputOf(run, "install_hook")).toBe("tools-install\n");
    expect((await hooksOf(server, name)).install).toMatchObject({ state: "succeeded", script: "..tools/install.sh" });
  });
});

describe("durations", () => {
  it("timeout: 600h is refused at its line (it would overflow Node's timer) and the hook runs to its end under the default", async () => {
    const name = uniqueName("longtimeout");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  startup: startup.sh\ntimeout: 600h\n",
      "startup.sh": "#!/bin/bash\nsleep 1\necho finished\n",
    });
    const { events } = await createLocal(server, name, dir);
    expect(warningsOf(events, "provision_file")).toEqual([
      '.shed/provision.yaml:3:10: timeout: longer than the maximum of 7d (168h) (got "600h") (refused)',
    ]);
    expect(outputOf(events, "startup_hook")).toBe("finished\n");
    expect((await hooksOf(server, name)).startup).toMatchObject({ state: "succeeded", exit_code: 0 });

    // The longest accepted limit is a limit, not an instant kill.
    writeFiles(dir, { ".shed/provision.yaml": "hooks:\n  startup: startup.sh\ntimeout: 7d\n" });
    const run = await op(server, "POST", `/api/sheds/${name}/provision`, { hook: "startup" });
    expect(warningsOf(run)).toEqual([]);
    expect(outputOf(run, "startup_hook")).toBe("finished\n");
  });

  it("create's timeout over 7 days is refused naming the field, by the API and by the CLI, and nothing is made", async () => {
    const name = uniqueName("apitimeout");
    const res = await server.api("POST", "/api/sheds", { name, timeout: "600h" });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("timeout: longer than the maximum of 7d");
    const viaCli = await cli.run(["create", name, "--timeout", "8d"]);
    expect(viaCli.code).not.toBe(0);
    expect(viaCli.stderr).toContain('--timeout: "8d" is longer than the maximum of 7d');
    expect((await server.api("GET", `/api/sheds/${name}`)).status).toBe(404);
  });
});

async function getWarnings(name: string): Promise<string[]> {
  return (await server.api("GET", `/api/sheds/${name}`)).body.provision.warnings;
}

/** Bytes of every file in the shed's log directory, counted by the engine (not by Shed). */
async function logDirBytes(name: string): Promise<number> {
  const r = await dockerExec(name, ["sh", "-c", "cat /var/log/shed/* 2>/dev/null | wc -c"], "root");
  return Number(r.stdout.trim());
}

describe("hook logs are bounded on disk", () => {
  let name: string;
  let dir: string;
  beforeAll(async () => {
    name = uniqueName("chatty");
    dir = workspace({
      ".shed/provision.yaml": "hooks:\n  startup: startup.sh\n",
      // A daemon that writes half a MiB into the hook's output 20 times a second at most (about 10 MiB/s on an
      // idle machine), forever, counting what it wrote.
      "startup.sh": [
        "#!/bin/bash",
        "bash -c 'echo $$ >>/tmp/chatty.pids; n=0; while :; do head -c 524288 /dev/zero | tr \"\\0\" x; echo; n=$((n+512)); echo $n >/tmp/chatty-kib; sleep 0.05; done' &",
        "echo daemon-started",
        "",
      ].join("\n"),
      "big.sh":
        "#!/bin/bash\nfor i in $(seq 1 20); do head -c 50000 /dev/zero | tr '\\0' y; echo; sleep 0.1; done\necho the-end\n",
    });
    await createLocal(server, name, dir);
  });

  const written = async () => Number((await guestFile(name, "/tmp/chatty-kib"))?.trim() || 0);

  it("a daemon left by a hook writes far past hook_log_max_size; the log directory stays bounded, and shed logs says what was rotated away", async () => {
    await waitFor("the daemon to write 24 MiB", async () => (await written()) >= 24 * 1024, 60_000);
    // Unrotated, the directory would hold all 24 MiB; the rotator (once a second) holds it to about what the
    // daemon writes in a second.
    expect(await logDirBytes(name)).toBeLessThan(12 * 1024 * 1024);
    const rotated = await guestFile(name, "/var/log/shed/startup.log.rotated");
    expect(rotated?.length).toBeGreaterThan(0);
    expect(rotated?.length).toBeLessThanOrEqual(LOG_CAP / 2);

    const logs = await cli.run(["logs", name, "startup"]);
    expect(logs.stderr).toContain("older output of /var/log/shed/startup.log was rotated away");
    expect(logs.stdout).toMatch(/^\[shed: this log reached \d+ bytes, over hook_log_max_size \(65536\)/);
  });

  it("a run of the same hook again keeps every log the daemon writes visible and bounded (no unlinked file grows)", async () => {
    // The second run starts no daemon of its own: what grows is the first run's daemon's output.
    writeFiles(dir, { "startup.sh": "#!/bin/bash\necho second-run\n" });
    await op(server, "POST", `/api/sheds/${name}/provision`, { hook: "startup" });
    const before = await written();
    await waitFor("the daemon to write 24 MiB more", async () => (await written()) >= before + 24 * 1024, 60_000);
    expect(await logDirBytes(name)).toBeLessThan(12 * 1024 * 1024);
    const deleted = await dockerExec(
      name,
      ["sh", "-c", "ls -l /proc/[0-9]*/fd 2>/dev/null | grep -c '/var/log/shed/.*(deleted)'"],
      "root",
    );
    expect(deleted.stdout.trim()).toBe("0");
    expect(((await guestFile(name, "/var/log/shed/startup.log.1")) ?? "").length).toBeLessThanOrEqual(LOG_CAP);
    // The daemons (by their pids) are stopped, so the next tests' hooks have the shed to themselves.
    const stopped = await dockerExec(name, ["sh", "-c", "kill $(cat /tmp/chatty.pids)"]);
    expect(stopped.code, stopped.stderr).toBe(0);
  });

  const guestModes: [string, () => GuestExec][] = [
    ["the server follows the log file", () => new DockerGuestExec(docker, `shed-${name}`)],
    [
      "the hook script streams the log",
      () => ({ exec: (spec) => new DockerGuestExec(docker, `shed-${name}`).exec(spec) }),
    ],
  ];
  it.each(guestModes)(
    "a hook that itself writes past the cap is still streamed to its end when %s",
    async (_m, guestOf) => {
      const chunks: Buffer[] = [];
      const run = await runHook(guestOf(), {
        hook: "install",
        script: "big.sh",
        timeoutMs: 60_000,
        env: {},
        logMaxBytes: LOG_CAP,
        onOutput: (b) => chunks.push(Buffer.from(b)),
      });
      expect(run).toMatchObject({ state: "succeeded", exit_code: 0 });
      const text = Buffer.concat(chunks).toString();
      expect(text).toContain("[shed: this log reached");
      // The stream goes on across rotations to the hook's end. Only a rotation in the moment between the
      // hook's exit and the last read can take its last lines out of the stream: they are in the rotated part.
      const rotated = (await guestFile(name, "/var/log/shed/install.log.rotated")) ?? "";
      expect(text.endsWith("the-end\n") || rotated.endsWith("the-end\n"), text.slice(-300)).toBe(true);
    },
  );
});
