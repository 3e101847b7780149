/**
 * Live credential sync (src/backends/vm/credential-sync.ts) against the built
 * agent (npm run build) on Unix sockets in a temp dir, as root on this host:
 * the "guest" is another temp dir, watched and written by the agent exactly as
 * inside a VM. Counts passes to prove there is no ping-pong; waits are polls
 * with deadlines, and "stays quiet" is checked after the echo was seen and
 * ignored. Budget: about 15 s.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/agent/client/agent-client.js";
import { AgentGuestExec } from "../../src/agent/client/agent-guest-exec.js";
import { CredentialSync, type CredentialSyncPass } from "../../src/backends/vm/credential-sync.js";
import type { CredentialConfig } from "../../src/config/server-config.js";
import { copyCredentialIn } from "../../src/guest/credential-copy.js";
import { killAgents, type RunningAgent, startAgent, until } from "../helpers/agent.js";
import { removeTempDirs, tempDir } from "../helpers/cli.js";

let agent: RunningAgent;
let client: AgentClient;
const syncs: CredentialSync[] = [];

beforeAll(async () => {
  agent = await startAgent(tempDir("credsync-agent"));
  client = await agent.client();
});

afterEach(async () => {
  await Promise.all(syncs.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  client?.close();
  await agent?.stop();
  killAgents();
  removeTempDirs();
});

function cred(partial: Partial<CredentialConfig> & { name: string; source: string; target: string }): CredentialConfig {
  return { readonly: false, exclude: [], ...partial };
}

/** Copies in as create does, then starts sync; records every pass and warning. */
async function startSync(
  credentials: CredentialConfig[],
  opts: { hostWatch?: "fs" | "poll"; agent?: AgentClient; copyIn?: boolean } = {},
) {
  const on = opts.agent ?? client;
  if (opts.copyIn !== false) {
    for (const c of credentials) await copyCredentialIn(new AgentGuestExec(on), c, { owner: "root" });
  }
  const passes: CredentialSyncPass[] = [];
  const warnings: string[] = [];
  const sync = await CredentialSync.start({
    agent: on,
    credentials,
    warn: (m) => warnings.push(m),
    guestUser: "root",
    debounceMs: 100,
    pollMs: 150,
    ...(opts.hostWatch ? { hostWatch: opts.hostWatch } : {}),
    onPass: (p) => passes.push(p),
  });
  syncs.push(sync);
  // What start itself carried (its reconcile); later assertions count from here.
  const initial = passes.splice(0);
  const copies = (direction: CredentialSyncPass["direction"], name?: string) =>
    passes.filter((p) => p.direction === direction && (!name || p.credential === name) && p.written.length > 0);
  const echoes = (direction: CredentialSyncPass["direction"]) =>
    passes.filter((p) => p.direction === direction && p.written.length === 0 && p.deleted.length === 0);
  return { sync, initial, passes, warnings, copies, echoes };
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : undefined);

/** After the echo was handled, a few more debounce periods must bring no further copy. */
async function staysQuiet(passes: CredentialSyncPass[], from: number, count: number): Promise<void> {
  const seen = passes.length;
  await new Promise((r) => setTimeout(r, 600));
  const carried = (p: CredentialSyncPass) => p.written.length > 0 || p.deleted.length > 0;
  expect(passes.slice(seen).filter(carried)).toEqual([]);
  expect(passes.slice(from).filter(carried)).toHaveLength(count);
}

describe("a file credential", () => {
  it("carries a host edit in and a guest edit out, once each, keeping the host file's mode", async () => {
    const host = tempDir("credsync-host");
    const guest = tempDir("credsync-guest");
    const source = join(host, "hosts.yml");
    const target = join(guest, "config", "gh-hosts.yml");
    writeFileSync(source, "token: one\n", { mode: 0o600 });
    const s = await startSync([cred({ name: "gh", source, target })]);
    expect(read(target)).toBe("token: one\n");
    expect(s.initial.filter((p) => p.written.length > 0)).toEqual([]);

    writeFileSync(source, "token: two\n");
    await until("the host edit in the guest", () => read(target) === "token: two\n");
    // The guest's watcher saw Shed's own write: that pass must carry nothing back.
    await until("the guest's echo handled", () => s.echoes("to-host").length > 0);
    expect(s.copies("to-guest")).toHaveLength(1);
    expect(s.copies("to-host")).toHaveLength(0);
    await staysQuiet(s.passes, 0, 1);

    chmodSync(target, 0o644);
    writeFileSync(target, "token: three\n");
    await until("the guest edit on the host", () => read(source) === "token: three\n");
    await until("the host's echo handled", () => s.echoes("to-guest").length > 0);
    expect(s.copies("to-host")).toHaveLength(1);
    expect(s.copies("to-guest")).toHaveLength(1);
    expect(statSync(source).mode & 0o777).toBe(0o600);
    expect(s.warnings).toEqual([]);
  });

  it("polls the host when asked, and a readonly credential is never written back", async () => {
    const host = tempDir("credsync-host");
    const guest = tempDir("credsync-guest");
    const ro = cred({ name: "ro", source: join(host, "ro.json"), target: join(guest, "ro.json"), readonly: true });
    const rw = cred({ name: "rw", source: join(host, "rw.json"), target: join(guest, "rw.json") });
    writeFileSync(ro.source, "ro-1");
    writeFileSync(rw.source, "rw-1");
    const s = await startSync([ro, rw], { hostWatch: "poll" });

    writeFileSync(ro.source, "ro-2");
    await until("the readonly credential's host edit in the guest", () => read(ro.target) === "ro-2");
    expect(statSync(ro.target).mode & 0o222).toBe(0);

    // Both guest files change together; once the writable one arrived, the readonly one had its chance.
    chmodSync(ro.target, 0o644);
    writeFileSync(ro.target, "ro-guest");
    writeFileSync(rw.target, "rw-guest");
    await until("the writable credential on the host", () => read(rw.source) === "rw-guest");
    expect(read(ro.source)).toBe("ro-2");
    expect(s.copies("to-host", "ro")).toEqual([]);
    expect(s.warnings).toEqual([]);
  });
});

describe("a directory credential", () => {
  it("syncs nested files both ways, never sends an excluded file out, and mirrors a guest deletion", async () => {
    const host = tempDir("credsync-host");
    const guest = tempDir("credsync-guest");
    const source = join(host, "gcloud");
    const target = join(guest, ".config", "gcloud");
    mkdirSync(join(source, "sub", "deep"), { recursive: true });
    writeFileSync(join(source, "top.txt"), "top");
    writeFileSync(join(source, "sub", "deep", "a.txt"), "a-1", { mode: 0o600 });
    writeFileSync(join(source, "host.secret"), "never-in");
    const s = await startSync([cred({ name: "gcloud", source, target, exclude: ["*.secret"] })]);
    expect(read(join(target, "sub", "deep", "a.txt"))).toBe("a-1");
    expect(existsSync(join(target, "host.secret"))).toBe(false);

    mkdirSync(join(source, "sub", "new"));
    writeFileSync(join(source, "sub", "new", "b.txt"), "b-host");
    await until("a new nested host file in the guest", () => read(join(target, "sub", "new", "b.txt")) === "b-host");
    await until("the guest's echo handled", () => s.echoes("to-host").length > 0);
    expect(s.copies("to-guest").map((p) => p.written)).toEqual([["sub/new/b.txt"]]);

    writeFileSync(join(target, "sub", "deep", "a.txt"), "a-guest");
    mkdirSync(join(target, "made", "in"), { recursive: true });
    writeFileSync(join(target, "made", "in", "guest.txt"), "g");
    writeFileSync(join(target, "sub", "token.secret"), "must-stay-in-the-guest");
    await until("nested guest files on the host", () => read(join(source, "made", "in", "guest.txt")) === "g");
    await until("the changed guest file on the host", () => read(join(source, "sub", "deep", "a.txt")) === "a-guest");
    expect(existsSync(join(source, "sub", "token.secret"))).toBe(false);
    expect(statSync(join(source, "sub", "deep", "a.txt")).mode & 0o777).toBe(0o600);
    expect(read(join(source, "host.secret"))).toBe("never-in");

    rmSync(join(target, "top.txt"));
    // The pass that carries the deletion, once it has ended (the file goes before the pass is reported), and
    // then the host's echo of it: an echo seen earlier, of the files above, says nothing about this one.
    const carried = (p: CredentialSyncPass) => p.direction === "to-host" && p.deleted.includes("top.txt");
    await until("the guest's deletion carried to the host", () => s.passes.some(carried));
    expect(existsSync(join(source, "top.txt"))).toBe(false);
    const deletion = s.passes.findIndex(carried);
    await until("the host's echo of the deletion handled", () =>
      s.passes.slice(deletion + 1).some((p) => p.direction === "to-guest" && p.written.length === 0),
    );
    await staysQuiet(s.passes, s.passes.length, 0);
    expect(s.copies("to-guest")).toHaveLength(1);
    expect(s.warnings).toEqual([]);
  });

  it("a host deletion of a synced file is mirrored in the guest", async () => {
    const host = tempDir("credsync-host");
    const guest = tempDir("credsync-guest");
    const source = join(host, "aws");
    const target = join(guest, "aws");
    mkdirSync(source);
    writeFileSync(join(source, "credentials"), "c");
    writeFileSync(join(source, "config"), "k");
    const s = await startSync([cred({ name: "aws", source, target })]);
    rmSync(join(source, "config"));
    await until("the host deletion in the guest", () => !existsSync(join(target, "config")));
    expect(read(join(target, "credentials"))).toBe("c");
    expect(s.warnings).toEqual([]);
  });
});

describe("stopping", () => {
  it("stop() ends watching; a restarted sync reconciles, host first; a closed agent connection stops it", async () => {
    const host = tempDir("credsync-host");
    const guest = tempDir("credsync-guest");
    const a = cred({ name: "a", source: join(host, "a"), target: join(guest, "a") });
    const b = cred({ name: "b", source: join(host, "b"), target: join(guest, "b") });
    writeFileSync(a.source, "a-1");
    writeFileSync(b.source, "b-1");
    const first = await startSync([a]);
    await startSync([b]);
    await first.sync.stop();
    expect(first.sync.running).toBe(false);

    // Both change; once b (still synced) arrived, a had the same chance and must not have moved.
    writeFileSync(a.source, "a-2");
    writeFileSync(b.source, "b-2");
    await until("b in the guest", () => read(b.target) === "b-2");
    expect(read(a.target)).toBe("a-1");
    expect(first.copies("to-guest")).toEqual([]);

    // As after a VM restart: a new connection, a new sync; with no copy-in first, its own start brings
    // the host's newer copy in (the host wins where both sides differ at start).
    const second = await agent.client();
    const again = await startSync([a], { agent: second, copyIn: false });
    expect(read(a.target)).toBe("a-2");
    expect(again.initial.filter((p) => p.written.length > 0)).toEqual([
      { credential: "a", direction: "to-guest", written: [""], deleted: [] },
    ]);
    second.close();
    await until("sync stopped with its connection", () => !again.sync.running);
    expect(again.warnings).toEqual([]);
  });
});
