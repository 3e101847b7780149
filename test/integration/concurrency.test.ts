// Budget: about 60 s on two cores (12 sheds, created at once or side by side).
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { containerExists } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { op, outputOf, resultOf, stepEnd, waitFor, workspace } from "../helpers/provision.js";
import { type TestServer, useTestServer } from "../helpers/server.js";

/**
 * One server, many sheds: creates at the same time all succeed, and an
 * operation on one shed never waits for another shed's (operations are
 * serialized per name only, src/lifecycle/name-lock.ts).
 */
let server: TestServer;
useTestServer((s) => {
  server = s;
});

describe("concurrency on one server", () => {
  it("creates 10 sheds at once, all of them", async () => {
    const names = Array.from({ length: 10 }, (_, i) => uniqueName(`many${i}`));
    const results = await Promise.all(names.map((name) => server.api("POST", "/api/sheds", { name })));
    for (const [i, res] of results.entries()) {
      expect(res.status, `${names[i]}: ${JSON.stringify(res.body)}`).toBe(201);
      expect(res.body).toMatchObject({ name: names[i], status: "running" });
    }
    const listed = await server.api("GET", "/api/sheds");
    const running = new Set(
      (listed.body.sheds as { name: string; status: string }[])
        .filter((s) => s.status === "running")
        .map((s) => s.name),
    );
    for (const name of names) {
      expect(running.has(name), `${name} in the list`).toBe(true);
      expect(await containerExists(name)).toBe(true);
    }
  });

  it("stops and starts shed A while shed B's install hook is still running", async () => {
    const a = uniqueName("iso-a");
    const created = await server.api("POST", "/api/sheds", { name: a });
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    // B's install hook says it started, then waits for the test to release it: no timing involved.
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: block.sh\n",
      "block.sh":
        "#!/bin/sh\ntouch /workspace/.started\nwhile [ ! -e /workspace/.release ]; do sleep 0.1; done\necho released\n",
    });
    const b = uniqueName("iso-b");
    let bSettled = false;
    const bCreate = op(server, "POST", "/api/sheds", { name: b, local_dir: dir }).finally(() => {
      bSettled = true;
    });
    try {
      await waitFor("B's install hook to start", async () => existsSync(join(dir, ".started")) || bSettled, 120_000);
      expect(bSettled, "B's create ended before its hook was released").toBe(false);

      // Bounded, so that a stop queued behind B fails here instead of hanging until B is released.
      const stopped = await within(op(server, "POST", `/api/sheds/${a}/stop`), "A's stop", 60_000);
      expect(resultOf(stopped).status).toBe("stopped");
      const listed = await server.api("GET", "/api/sheds");
      expect(listed.status).toBe(200);
      expect(listed.body.sheds.find((s: { name: string }) => s.name === a)?.status).toBe("stopped");
      const started = await within(op(server, "POST", `/api/sheds/${a}/start`), "A's start", 60_000);
      expect(resultOf(started).status).toBe("running");
      // All of that happened while B's hook was blocked: B cannot have finished.
      expect(bSettled).toBe(false);
    } finally {
      writeFileSync(join(dir, ".release"), "");
    }
    const events = await bCreate;
    expect(resultOf(events).status).toBe("running");
    expect(stepEnd(events, "install_hook")?.outcome, JSON.stringify(events)).toBe("succeeded");
    expect(outputOf(events, "install_hook")).toBe("released\n");
  });
});

/** The promise's value, or a failure naming what did not finish within ms (a deadline, not a measurement). */
function within<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
