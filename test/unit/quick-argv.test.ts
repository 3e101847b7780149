import { describe, expect, it } from "vitest";
import { quickCommand } from "../../src/cli/quick-argv.js";

describe("the argv the quick path takes (boot.ts)", () => {
  it("recognises version and list with the global options anywhere, as commander does", () => {
    expect(quickCommand(["version"])).toEqual({ command: "version", json: false });
    expect(quickCommand(["--json", "version"])).toEqual({ command: "version", json: true });
    expect(quickCommand(["list"])).toEqual({ command: "list", json: false, all: false });
    expect(quickCommand(["ls", "--all"])).toEqual({ command: "list", json: false, all: true });
    expect(quickCommand(["--config", "/c.yaml", "list", "--json", "--server=dev"])).toEqual({
      command: "list",
      json: true,
      all: false,
      config: "/c.yaml",
      server: "dev",
    });
    // The last of a repeated option wins, as in commander.
    expect(quickCommand(["--server", "a", "list", "--server", "b"])?.server).toBe("b");
  });

  it("recognises start, stop and a forced delete of one well-formed name", () => {
    expect(quickCommand(["stop", "web"])).toEqual({ command: "stop", name: "web", json: false });
    expect(quickCommand(["--json", "start", "web-2", "--server", "dev"])).toEqual({
      command: "start",
      name: "web-2",
      json: true,
      server: "dev",
    });
    expect(quickCommand(["delete", "web", "-f"])).toEqual({
      command: "delete",
      name: "web",
      force: true,
      keepVolume: false,
      json: false,
    });
    expect(quickCommand(["delete", "--force", "--keep-volume", "web", "--json"])).toEqual({
      command: "delete",
      name: "web",
      force: true,
      keepVolume: true,
      json: true,
    });
  });

  it("leaves everything else to the full CLI, whose messages and usage errors stay the only ones", () => {
    for (const argv of [
      [],
      ["list", "extra"],
      ["--all", "list"], // --all is list's option: commander refuses it before the command
      ["version", "--all"],
      ["list", "--help"],
      ["-h"],
      ["list", "--json=1"],
      ["list", "--server"],
      ["list", "--server="],
      ["list", "--config", "--json"],
      ["list", "--"],
      ["show", "x"],
      ["exec", "x", "--", "ls"],
      ["version", "list"],
      ["lis"],
      ["start"],
      ["stop", "a", "b"],
      ["stop", "Bad_Name"],
      ["stop", "-x"],
      ["start", "a", "--force"], // delete's option
      ["delete", "a"], // asks first: the full CLI's
      ["delete", "a", "--keep-volume"],
      ["delete", "-f"],
      ["--force", "delete", "a"], // before the command: commander refuses it
      ["delete", "a", "-fy"],
      ["stop", "a", "--help"],
    ]) {
      expect(quickCommand(argv), JSON.stringify(argv)).toBeUndefined();
    }
  });
});
