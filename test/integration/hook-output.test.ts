import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { DockerGuestExec } from "../../src/backends/docker/docker-exec.js";
import type { HookName } from "../../src/config/provision-file.js";
import type { GuestExec } from "../../src/guest/exec.js";
import { hookLogPath, runHook } from "../../src/guest/hook-runner.js";
import { docker } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { createLocal, guestFile, processes, workspace } from "../helpers/provision.js";
import { type TestServer, useTestServer } from "../helpers/server.js";

/**
 * The two ways a hook's output reaches the server, on the real engine: the
 * server follows the log file in the shed's log volume (Docker), or the hook
 * script streams the log over exec (what a backend without host-readable logs
 * gets; here the same Docker guest with its host path hidden). Both must give
 * the user exactly what the log holds, and neither may hang on a daemon.
 */
let server: TestServer;
useTestServer((s) => {
  server = s;
});

let name: string;
let dockerGuest: DockerGuestExec;
beforeAll(async () => {
  name = uniqueName("hookout");
  await createLocal(
    server,
    name,
    workspace({
      // About 5 MB: numbered lines with multi-byte characters, and a last line on stderr without a newline.
      "print.sh": "#!/bin/bash\nseq 1 250000 | sed 's/$/ línea ✓ 数据/'\nprintf 'the end' >&2\n",
      "daemon.sh": "#!/bin/bash\nbash -c 'while sleep 0.2; do echo tick; done' &\necho started\n",
      "hang.sh": "#!/bin/bash\necho hanging\nsleep 1000\n",
    }),
  );
  dockerGuest = new DockerGuestExec(docker, `shed-${name}`);
});

const modes: [string, () => GuestExec][] = [
  ["the server follows the log in the shed's volume", () => dockerGuest],
  ["the hook script streams the log over exec", () => ({ exec: (spec) => dockerGuest.exec(spec) })],
];

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Runs a hook script of the test's workspace and collects what the server got of its output. */
async function hook(guest: GuestExec, hook: HookName, script: string, timeoutMs = 60_000) {
  const chunks: Buffer[] = [];
  const run = await runHook(guest, { hook, script, timeoutMs, env: {}, onOutput: (b) => chunks.push(Buffer.from(b)) });
  return { run, output: Buffer.concat(chunks) };
}

describe.each(modes)("hook output when %s", (_mode, guestOf) => {
  it("reaches the server byte for byte as the log holds it", async () => {
    const { run, output: streamed } = await hook(guestOf(), "startup", "print.sh");
    expect(run).toMatchObject({ state: "succeeded", exit_code: 0 });
    const log = await guestFile(name, hookLogPath("startup"));
    expect(streamed.length).toBe(Buffer.byteLength(log ?? ""));
    expect(sha(streamed)).toBe(sha(log ?? ""));
    const text = streamed.toString("utf8");
    expect(text.startsWith("1 línea ✓ 数据\n2 línea ✓ 数据\n")).toBe(true);
    expect(text.endsWith("\n250000 línea ✓ 数据\nthe end")).toBe(true);
  });

  it("ends when the hook's process ends, though a daemon it left holds its output", async () => {
    const { run, output } = await hook(guestOf(), "install", "daemon.sh");
    expect(run).toMatchObject({ state: "succeeded", exit_code: 0 });
    // The previous mode's daemon still ticks into this same log (a log is emptied for a new run, never
    // renamed, so what an old daemon writes stays bounded: guest/hook-script.ts).
    expect(output.toString()).toMatch(/^(tick\n)*started\n/);
    expect((await processes(name)).some((p) => p.includes("while sleep 0.2"))).toBe(true);
  });

  it("a hook past its limit is killed with its process tree, and what it printed is kept", async () => {
    const { run, output } = await hook(guestOf(), "shutdown", "hang.sh", 1500);
    expect(run).toMatchObject({ state: "timed_out", tail: ["hanging"] });
    expect(output.toString()).toBe("hanging\n");
    expect((await processes(name)).filter((p) => p.includes("sleep 1000"))).toEqual([]);
  });
});

describe("where hook logs are on the host", () => {
  it("the Docker guest maps the log directory into its volume on this host; other paths outside volumes map to nothing", async () => {
    const path = await dockerGuest.hostPath(hookLogPath("startup"));
    expect(path).toMatch(/^\/.+\/startup\.log$/);
    expect(existsSync(path as string)).toBe(true);
    expect(await dockerGuest.hostPath("/etc/hostname")).toBeUndefined();
    expect(await dockerGuest.hostPath("/var/log/shedx/a.log")).toBeUndefined();
  });
});
