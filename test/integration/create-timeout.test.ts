import { describe, expect, it } from "vitest";
import { uniqueName } from "../helpers/names.js";
import { createLocal, hooksOf, processes, stepEnd, warningsOf, workspace } from "../helpers/provision.js";
import { type TestServer, useTestServer } from "../helpers/server.js";

/** `shed create --timeout D`: the longest create may take. */
let server: TestServer;
useTestServer((s) => {
  server = s;
});

describe("create --timeout", () => {
  it("cuts off a hook that outlives the create's time limit; the shed is still made and nothing keeps running", async () => {
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: slow.sh\n",
      "slow.sh": { content: "#!/bin/bash\necho starting\nsleep 600\necho never\n", mode: 0o755 },
    });
    const name = uniqueName("deadline");
    const started = Date.now();
    const { events, shed } = await createLocal(server, name, dir, { timeout: "4s" });
    const took = Date.now() - started;
    expect(took).toBeLessThan(60_000);
    expect(shed.status).toBe("running");
    expect(stepEnd(events, "install_hook").outcome).toBe("warning");
    expect(warningsOf(events, "install_hook").join("\n")).toMatch(/time limit \(--timeout\)/);
    // The steps after the deadline are not run.
    expect(stepEnd(events, "startup_hook").outcome).toBe("warning");
    const hooks = await hooksOf(server, name);
    expect(hooks.install.state).toBe("timed_out");
    expect((await processes(name)).filter((p) => p.includes("sleep 600"))).toEqual([]);
  });

  it("a deadline that passes during a fatal step fails the create and undoes it", async () => {
    const name = uniqueName("deadline-fatal");
    const res = await server.api("POST", "/api/sheds", { name, timeout: "1ms" });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe("TIMEOUT");
    const list = (await server.api("GET", "/api/sheds")).body.sheds.map((s: { name: string }) => s.name);
    expect(list).not.toContain(name);
  });
});
