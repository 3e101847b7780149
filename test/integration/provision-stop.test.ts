import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { containerExists, docker } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import {
  createLocal,
  getShed,
  guestFile,
  hooksOf,
  op,
  outputOf,
  resultOf,
  stepEnd,
  warningsOf,
  workspace,
} from "../helpers/provision.js";
import { startTestServer, type TestServer, useTestServer } from "../helpers/server.js";

/** The shutdown hook on stop and delete, its budget, and hook records across server restarts. */
let server: TestServer;
useTestServer((s) => {
  server = s;
});

async function running(name: string): Promise<boolean> {
  return (await docker.getContainer(`shed-${name}`).inspect()).State.Running;
}

describe("shutdown hook", () => {
  it("runs on stop and on delete", async () => {
    const name = uniqueName("shutdown");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  shutdown: shutdown.sh\n",
      "shutdown.sh": '#!/bin/bash\necho "shutdown of $SHED_NAME" | tee -a /workspace/shutdown-marker\n',
    });
    await createLocal(server, name, dir);
    expect((await hooksOf(server, name)).shutdown.state).toBe("never_run");

    const stop = await op(server, "POST", `/api/sheds/${name}/stop`);
    expect(stop.filter((e) => e.type === "step").map((e) => e.step)).toEqual([
      "provision_file",
      "shutdown_hook",
      "drain",
      "stop",
    ]);
    expect(resultOf(stop).status).toBe("stopped");
    expect(outputOf(stop, "shutdown_hook")).toBe(`shutdown of ${name}\n`);
    expect((await hooksOf(server, name)).shutdown).toMatchObject({ state: "succeeded", exit_code: 0 });
    expect(readFileSync(join(dir, "shutdown-marker"), "utf8")).toBe(`shutdown of ${name}\n`);
    expect(await running(name)).toBe(false);

    resultOf(await op(server, "POST", `/api/sheds/${name}/start`));
    const del = await op(server, "DELETE", `/api/sheds/${name}`);
    expect(del.filter((e) => e.type === "step").map((e) => e.step)).toEqual([
      "provision_file",
      "shutdown_hook",
      "drain",
      "stop",
      "remove",
    ]);
    expect(stepEnd(del, "shutdown_hook").outcome).toBe("succeeded");
    expect(await containerExists(name)).toBe(false);
    expect(readFileSync(join(dir, "shutdown-marker"), "utf8")).toBe(`shutdown of ${name}\n`.repeat(2));
  });

  it("overrunning its budget (half of stop_timeout) is a timeout, and the shed still stops", async () => {
    const slow = await startTestServer({ stop_timeout: "4s" });
    const name = uniqueName("overrun");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  shutdown: shutdown.sh\n",
      "shutdown.sh": "#!/bin/bash\necho stopping-slowly\nsleep 30\necho never-printed\n",
      "data.txt": "precious\n",
    });
    await createLocal(slow, name, dir);
    const before = Date.now();
    const stop = await op(slow, "POST", `/api/sheds/${name}/stop`);
    const took = Date.now() - before;
    expect(resultOf(stop).status).toBe("stopped");
    // The 2 s budget, timeout's 5 s kill grace at most, and docker stop's 4 s: far less than the hook's 30 s.
    expect(took).toBeLessThan(20_000);
    const shutdown = (await hooksOf(slow, name)).shutdown;
    expect(shutdown).toMatchObject({
      state: "timed_out",
      message: "killed after the shutdown hook's time limit of 2s",
    });
    expect(shutdown.duration_ms).toBeGreaterThanOrEqual(2000);
    expect(shutdown.duration_ms).toBeLessThan(8000);
    expect(shutdown.tail).toEqual(["stopping-slowly"]);
    expect(warningsOf(stop, "shutdown_hook").join("\n")).toContain("time limit of 2s");
    expect(stepEnd(stop, "stop").outcome).toBe("succeeded");
    expect(await running(name)).toBe(false);
    expect((await getShed(slow, name)).status).toBe("stopped");
    expect(readFileSync(join(dir, "data.txt"), "utf8")).toBe("precious\n");
    // Its log is kept in the shed: readable again after a start.
    resultOf(await op(slow, "POST", `/api/sheds/${name}/start`));
    expect(await guestFile(name, "/var/log/shed/shutdown.log")).toBe("stopping-slowly\n");
  });
});

describe("hook records", () => {
  it("survive a server restart on the same data dir", async () => {
    const first = await startTestServer();
    const name = uniqueName("restart");
    const dir = workspace({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh\nenv:\n  KEPT: yes\n",
      "install.sh":
        '#!/bin/bash\nmkdir -p "$HOME/.kept/bin"\necho \'export PATH="$HOME/.kept/bin:$PATH"\' >> "$HOME/.bashrc"\n',
      "startup.sh": "#!/bin/bash\necho about-to-fail\nexit 5\n",
    });
    await createLocal(first, name, dir);
    const before = await getShed(first, name);
    expect(before.provision.hooks.install.state).toBe("succeeded");
    expect(before.provision.hooks.startup).toMatchObject({ state: "failed", exit_code: 5, tail: ["about-to-fail"] });
    expect(before.provision.path_added).toEqual(["/home/shed/.kept/bin"]);
    await first.close();

    const second = await startTestServer({}, first.dir);
    expect(second.httpPort).not.toBe(0);
    const after = await getShed(second, name);
    expect(after.provision).toEqual(before.provision);
    expect(after.provision.hooks.install.started_at).toBe(before.provision.hooks.install.started_at);
    // The restarted server also still applies what it remembered: the env and the install's PATH entries.
    const env = second.service.guestEnv(after);
    expect(env.KEPT).toBe("yes");
    expect(env.PATH?.split(":")[0]).toBe("/home/shed/.kept/bin");
  });
});
