import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import {
  BEGIN_MARKER,
  END_MARKER,
  findBlock,
  hostEntry,
  installBlock,
  parseBlock,
  removeBlock,
  renderBlock,
  shadowingLines,
} from "../../src/cli/ssh-config-block.js";
import { freshSessionName, parseSessions, sendKeysArgv, typedCommand } from "../../src/cli/tmux.js";
import { ShedError } from "../../src/core/errors.js";

const server = {
  name: "dev",
  entry: { host: "127.0.0.1", http_port: 8080, ssh_port: 2222, host_key: "ssh-ed25519 AAAA" },
};
const files = { keyFile: "/home/u/.shed/id_ed25519", knownHostsFile: "/home/u/.shed/known hosts" };
const block = renderBlock([hostEntry("web", server, files), hostEntry("api", server, files)]);

describe("the managed block of ~/.ssh/config", () => {
  const originals = [
    "",
    "Host a\n  User b\n",
    "Host a\n  User b",
    "Host a\r\n  User b\r\n",
    "Host a\r\n  User b",
    "\n\n",
    "# caf\u00e9\nHost *\n  ServerAliveInterval 30\n",
  ];

  test.each(originals)("installing then removing gives back the same bytes: %j", (original) => {
    const installed = installBlock(original, block, "cfg");
    expect(installed.startsWith(original)).toBe(true);
    expect(installed).toContain(block);
    expect(removeBlock(installed, "cfg")).toBe(original);
    // Installing again replaces in place: the same text.
    expect(installBlock(installed, block, "cfg")).toBe(installed);
  });

  test("a block in the middle is replaced in place and removed with its line ending only", () => {
    const before = "Host a\r\n  User b\r\n";
    const after = "Host z\r\n  User y\r\n";
    const old = renderBlock([hostEntry("old", server, files)]);
    const text = `${before}${old}\r\n${after}`;
    expect(installBlock(text, block, "cfg")).toBe(`${before}${block}\r\n${after}`);
    expect(removeBlock(text, "cfg")).toBe(`${before}${after}`);
  });

  test("the entries of an installed block are read back by host, shed and server", () => {
    const text = installBlock("Host a\n", block, "cfg");
    const region = findBlock(text, "cfg");
    expect(region).toBeDefined();
    const entries = parseBlock(text, region ?? { start: 0, end: 0 });
    expect(entries.map((e) => [e.host, e.shed, e.server])).toEqual([
      ["shed-web", "web", "dev"],
      ["shed-api", "api", "dev"],
    ]);
    expect(entries[0]?.text).toBe(hostEntry("web", server, files).text);
  });

  test("a start marker without an end marker is an error naming the line", () => {
    let error: unknown;
    try {
      installBlock(`Host a\n${BEGIN_MARKER}\nHost shed-x\n`, block, "/home/u/.ssh/config");
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ShedError);
    expect((error as ShedError).code).toBe("INVALID_CONFIG");
    expect((error as ShedError).message).toBe("/home/u/.ssh/config:2: the shed block has no end marker");
    expect((error as ShedError).hint).toContain(END_MARKER);
  });

  test("markers count only at the start of a line", () => {
    const text = `# see ${BEGIN_MARKER}\nHost a\n`;
    expect(findBlock(text, "cfg")).toBeUndefined();
    expect(removeBlock(text, "cfg")).toBe(text);
  });

  test("paths are quoted, and a path OpenSSH cannot express is refused", () => {
    expect(hostEntry("web", server, files).text).toContain('UserKnownHostsFile "/home/u/.shed/known hosts"');
    expect(() => hostEntry("web", server, { ...files, keyFile: '/a"b' })).toThrow(ShedError);
  });

  test("earlier Host lines that also match are reported", () => {
    const text = "Host *\n  User bob\nHost shed-*  !shed-api\n  Port 1\nHost other\n  User x\n";
    expect(shadowingLines(text, ["shed-web"], "cfg")).toEqual(["cfg:1: Host *", "cfg:3: Host shed-*  !shed-api"]);
    expect(shadowingLines(text, ["shed-api"], "cfg")).toEqual(["cfg:1: Host *"]);
    expect(shadowingLines("Host other\n", ["shed-web"], "cfg")).toEqual([]);
  });
});

describe("tmux text", () => {
  test("typedCommand quotes so that a shell rebuilds the exact argv", () => {
    const argv = ["printf", "[%s]\\n", "it's", '$HOME `id` "q"', "!!", "a;b|c&&d", " x ", "\\", "", "ünï"];
    const text = typedCommand(argv);
    expect(typedCommand(["it's"])).toBe("'it'\\''s'");
    // Typed into an interactive bash (history expansion on, as in a session's shell), after a command `!!` would recall.
    const bash = spawnSync("bash", ["--norc", "-i"], { input: `true\n${text}\n`, encoding: "utf8" });
    expect(bash.stdout).toBe(
      argv
        .slice(2)
        .map((a) => `[${a}]\n`)
        .join(""),
    );
    const sh = spawnSync("sh", ["-c", text], { encoding: "utf8" });
    expect(sh.stdout).toBe(bash.stdout);
  });

  test("typedCommand refuses control characters and an empty command", () => {
    for (const bad of ["a\nb", "a\tb", "\u0003", "\u001b[A", "\u007f"]) {
      expect(() => typedCommand(["echo", bad])).toThrow(/control character/);
    }
    expect(() => typedCommand([])).toThrow(/no command/);
  });

  test("send-keys text never ends in ';' (tmux would split its argv there)", () => {
    const argv = sendKeysArgv("main", typedCommand(["echo", "a;"]));
    expect(argv).toEqual([
      "tmux",
      "send-keys",
      "-t",
      "=main:",
      "-l",
      "--",
      "'echo' 'a;'",
      ";",
      "send-keys",
      "-t",
      "=main:",
      "Enter",
    ]);
  });

  test("fresh session names and the session list", () => {
    expect(freshSessionName("main", [])).toBe("main");
    expect(freshSessionName("main", ["main", "main-2", "main-4"])).toBe("main-3");
    expect(parseSessions("2\t1700000000\t1\tb\n1\t1700000001\t0\ta\twith tab\n")).toEqual([
      { name: "a\twith tab", windows: 1, created: "2023-11-14T22:13:21.000Z", attached: false, clients: 0 },
      { name: "b", windows: 2, created: "2023-11-14T22:13:20.000Z", attached: true, clients: 1 },
    ]);
    expect(parseSessions("")).toEqual([]);
  });
});
