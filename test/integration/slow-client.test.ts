import { spawn } from "node:child_process";
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { newCliUser, SHED_BIN } from "../helpers/cli.js";
import { addServerAs } from "../helpers/cli-server.js";
import { dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { createLocal, hooksOf, waitFor, workspace } from "../helpers/provision.js";
import { parseSse, type TestServer, useTestServer } from "../helpers/server.js";

/**
 * A client that does not read while a hook prints a lot: the server must not
 * keep everything in memory. Past its backlog limit the live stream leaves
 * output out and says so; the hook's log keeps all of it.
 */
let server: TestServer;
// Logs are not rotated during these runs: the test checks that the log keeps every byte the stream left out.
useTestServer(
  (s) => {
    server = s;
  },
  { hook_log_max_size: "1GiB" },
);

const BYTES = 160_000_000;

function loudShed(label: string): Promise<string> {
  const dir = workspace({
    ".shed/provision.yaml": "hooks:\n  startup: loud.sh\n",
    "loud.sh": { content: `#!/bin/sh\nyes 'loud hook output line ..........' | head -c ${BYTES}\n`, mode: 0o755 },
  });
  const name = uniqueName(label);
  return createLocal(server, name, dir, { no_provision: true }).then(() => name);
}

describe("a client that reads too slowly", () => {
  it("gets a bounded stream with a note, the hook finishes, and the log is complete", async () => {
    const name = await loudShed("slow");
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: server.httpPort,
          path: `/api/sheds/${name}/provision`,
          method: "POST",
          headers: {
            accept: "text/event-stream",
            "content-type": "application/json",
            authorization: `Bearer ${server.token}`,
          },
        },
        (res) => {
          // Read nothing until the hook has finished in the shed.
          res.pause();
          void waitFor(
            "the startup hook to finish",
            async () => (await hooksOf(server, name)).startup.state === "succeeded",
            120_000,
          ).then(() => {
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", resolve);
            res.resume();
          }, reject);
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ hook: "startup" }));
    });
    await done;
    const events = parseSse(Buffer.concat(chunks).toString("utf8"));
    const output = events.filter((e) => e.type === "output").map((e) => e.text as string);
    const shown = output.reduce((n, t) => n + Buffer.byteLength(t), 0);
    expect(shown).toBeLessThan(BYTES);
    expect(output.join("")).toMatch(/\[shed: \d+ bytes of output not shown here \(the client read too slowly\)/);
    expect(events.at(-1).type).toBe("result");
    const size = await dockerExec(name, ["stat", "-c", "%s", "/var/log/shed/startup.log"]);
    expect(Number(size.stdout.trim())).toBe(BYTES);
  });
});

describe("a terminal that cannot keep up with the CLI", () => {
  it("holds the CLI back, so the server leaves output out with a note instead of the CLI buffering it all", async () => {
    const name = await loudShed("slowterm");
    const cli = newCliUser();
    await addServerAs(cli, server, "dev");
    const child = spawn(SHED_BIN, ["provision", name, "--hook", "startup"], { env: cli.env, stdio: "pipe" });
    child.stdout.resume();
    // The terminal takes nothing until the hook has finished in the shed.
    child.stderr.pause();
    await waitFor(
      "the startup hook to finish",
      async () => (await hooksOf(server, name)).startup.state === "succeeded",
      120_000,
    );
    const err: Buffer[] = [];
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.stderr.resume();
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    const printed = Buffer.concat(err).toString("utf8");
    expect(code).toBe(0);
    expect(printed).toMatch(/\[shed: \d+ bytes of output not shown here \(the client read too slowly\)/);
    expect(Buffer.byteLength(printed)).toBeLessThan(BYTES);
    expect(printed).toContain("  [startup] loud hook output line");
  });
});
