import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { createLocal, hooksOf, useTestServer, waitFor, workspace } from "../helpers/provision.js";
import { parseSse, type TestServer } from "../helpers/server.js";

/**
 * A client that does not read while a hook prints a lot: the server must not
 * keep everything in memory. Past its backlog limit the live stream leaves
 * output out and says so; the hook's log keeps all of it.
 */
let server: TestServer;
useTestServer((s) => {
  server = s;
});

const BYTES = 160_000_000;

describe("a client that reads too slowly", () => {
  it("gets a bounded stream with a note, the hook finishes, and the log is complete", async () => {
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  startup: loud.sh\n",
      "loud.sh": { content: `#!/bin/sh\nyes 'loud hook output line ..........' | head -c ${BYTES}\n`, mode: 0o755 },
    });
    const name = uniqueName("slow");
    await createLocal(server, name, dir, { no_provision: true });

    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: server.httpPort,
          path: `/api/sheds/${name}/provision`,
          method: "POST",
          headers: { accept: "text/event-stream", "content-type": "application/json" },
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
