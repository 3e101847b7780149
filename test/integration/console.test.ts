import { beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { uniqueName } from "../helpers/names.js";

/** `shed console NAME`: a login shell in the shed through the real OpenSSH client. */
const name = uniqueName("console");
let cli: CliUser;

useCliServer((_server, user) => {
  cli = user;
});
beforeAll(async () => {
  await cliOk(cli, ["create", name]);
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
