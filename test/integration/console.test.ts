import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliOk, closeAllMasters, newCliUser, removeTempDirs } from "../helpers/cli.js";
import { cleanupDocker } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** `shed console NAME`: a login shell in the shed through the real OpenSSH client. */
let server: TestServer;
const name = uniqueName("console");
const cli = newCliUser();

beforeAll(async () => {
  server = await startTestServer();
  await cliOk(cli, ["server", "add", "127.0.0.1", "--port", String(server.httpPort), "--name", "dev"]);
  await cliOk(cli, ["create", name]);
});

afterAll(async () => {
  closeAllMasters();
  await server?.close();
  await cleanupDocker();
  removeTempDirs();
});

describe("shed console", () => {
  it("runs a login shell as shed in /workspace that reads what is typed, and passes its exit code through", async () => {
    const res = await cli.run(["console", name], {
      input: 'echo "who=$(id -un) where=$(pwd) shed=$SHED_NAME"\nshopt -q login_shell && echo login\nexit 7\n',
    });
    expect(res.stdout).toContain(`who=shed where=/workspace shed=${name}\n`);
    expect(res.stdout).toContain("login\n");
    expect(res.code).toBe(7);
  });

  it("names the shed when it does not exist", async () => {
    const res = await cli.run(["console", "no-such-shed"], { input: "exit 0\n" });
    expect(res.code).toBe(255);
    expect(res.stderr).toContain('no shed named "no-such-shed"');
  });
});
