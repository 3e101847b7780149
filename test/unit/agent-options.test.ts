import { describe, expect, it } from "vitest";
import { hostEntry } from "../../src/cli/ssh-config-block.js";
import { agentOptions } from "../../src/cli/ssh-run.js";
import { attachArgv } from "../../src/cli/tmux.js";

const entry = { host: "127.0.0.1", http_port: 8080, ssh_port: 2222, host_key: "ssh-ed25519 AAAA" };
const files = { keyFile: "/k/id_ed25519", knownHostsFile: "/k/known_hosts" };

describe("ssh -A from the CLI", () => {
  it("forwards only when asked and there is an agent", () => {
    expect(agentOptions(false, "/tmp/agent.sock")).toEqual([]);
    expect(agentOptions(true, undefined)).toEqual([]);
    expect(agentOptions(true, "/tmp/agent.sock")[0]).toBe("-A");
  });

  it("uses a control path of its own, one per agent socket, never the shared master's", () => {
    const one = agentOptions(true, "/tmp/a/agent.sock");
    const two = agentOptions(true, "/tmp/b/agent.sock");
    expect(one[1]).toBe("-o");
    expect(one[2]).toMatch(/^ControlPath=".*\/a-[0-9a-f]{10}-%C"$/);
    expect(two[2]).not.toBe(one[2]);
    expect(agentOptions(true, "/tmp/a/agent.sock")).toEqual(one);
  });

  it("attach -A gives tmux the stable link as SSH_AUTH_SOCK, through positional parameters", () => {
    expect(attachArgv("main")).toEqual(["tmux", "new-session", "-A", "-s", "main", "-c", "/workspace"]);
    const argv = attachArgv("main", false, ".link");
    expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(argv.slice(3)).toEqual([
      "shed-attach",
      ".link",
      "tmux",
      "new-session",
      "-A",
      "-s",
      "main",
      "-c",
      "/workspace",
    ]);
  });

  it("shed ssh-config writes ForwardAgent yes only for an entry that asks for it", () => {
    expect(hostEntry("web", { name: "dev", entry }, files).text).not.toContain("ForwardAgent");
    const text = hostEntry("web", { name: "dev", entry: { ...entry, forward_agent: true } }, files).text;
    expect(text.split("\n")).toContain("  ForwardAgent yes");
  });
});
