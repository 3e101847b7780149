/**
 * shed-agent inside a container made from the VM root filesystem (docker image
 * shed-vm-rootfs:x86_64, from npm run build-vm-image): the image's own Node runs this
 * checkout's dist/agent (bind-mounted over /opt/shed/agent), listening ONLY on Unix sockets in
 * a bind-mounted temp dir. Never the image's init or boot service, never vsock. No network.
 *
 * Budget: about 15 s (one container; the drain waits for a short command).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentClient } from "../../src/agent/client/agent-client.js";
import { AgentGuestExec } from "../../src/agent/client/agent-guest-exec.js";
import type { ShedError } from "../../src/core/errors.js";
import { runCollect } from "../../src/guest/exec.js";
import { encodeFrame, FrameParser, FrameType } from "../../src/protocol/agent-frames.js";
import { AGENT_DIR, killAgents, type RunningAgent, rawTar, startAgent, until } from "../helpers/agent.js";
import { removeAtEnd } from "../helpers/cli.js";
import { RUN_PREFIX } from "../helpers/names.js";

const IMAGE = "shed-vm-rootfs:x86_64";
const dir = removeAtEnd(mkdtempSync(join(tmpdir(), "shed-agent-rootfs-")));
const container = `${RUN_PREFIX}-agent-rootfs`;
let agent: RunningAgent;
let client: AgentClient;
let guest: AgentGuestExec;

beforeAll(async () => {
  try {
    execFileSync("docker", ["image", "inspect", IMAGE], { stdio: "ignore" });
  } catch {
    throw new Error(`the docker image ${IMAGE} is missing: run \`npm run build-vm-image\` first`);
  }
  chmodSync(dir, 0o700);
  agent = await startAgent(dir, {
    socketDir: "/run/shed-agent-test",
    command: [
      "docker",
      "run",
      "--rm",
      "--name",
      container,
      "--label",
      `dev.shed.test=${RUN_PREFIX}`,
      "--network",
      "none",
      "--user",
      "root",
      "-v",
      `${AGENT_DIR}:/opt/shed/agent:ro`,
      "-v",
      `${dir}:/run/shed-agent-test`,
      "--entrypoint",
      "/opt/shed/node/bin/node",
      IMAGE,
      "/opt/shed/agent/shed-agent.cjs",
    ],
  });
  client = await agent.client();
  guest = new AgentGuestExec(client);
}, 120_000);

afterAll(async () => {
  client?.close();
  try {
    execFileSync("docker", ["rm", "-f", container], { stdio: "ignore" });
  } catch {
    // Already gone (--rm).
  }
  await agent?.stop();
  killAgents();
});

describe("shed-agent in the VM root filesystem", () => {
  it("runs commands as shed by default, apart streams and exit codes, with the image's Node", async () => {
    const r = await runCollect(guest, { argv: ["sh", "-c", 'id -un; echo "$HOME"; echo err >&2; exit 4'] });
    expect(r).toEqual({ exitCode: 4, stdout: "shed\n/home/shed\n", stderr: "err\n" });
    const input = await runCollect(guest, { argv: ["wc", "-c"] }, "x".repeat(300_000));
    expect(input.stdout.trim()).toBe("300000");
    expect((await client.health()).agentVersion).toMatch(/^\d/);
  });

  it("gives a terminal of the asked size and delivers signals", async () => {
    const tty = await runCollect(guest, { argv: ["sh", "-c", "test -t 1 && stty size"], tty: { cols: 91, rows: 17 } });
    expect(tty.stdout.replace(/\r/g, "")).toBe("17 91\n");
    const proc = await guest.exec({
      argv: ["sh", "-c", 'trap "exit 9" TERM; echo ready; while :; do sleep 0.05; done'],
    });
    let out = "";
    proc.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr.resume();
    await until("ready", () => out.includes("ready"));
    await proc.signal("SIGTERM");
    expect(await proc.exited).toBe(9);
  });

  it("moves files as tar both ways, owned by shed, and refuses traversal", async () => {
    await client.putTar(
      { dir: "/home/shed/.config/shed-test" },
      Readable.from([rawTar([{ name: "cred.json", body: '{"k":1}' }])]),
    );
    const r = await runCollect(guest, { argv: ["stat", "-c", "%U %s", "/home/shed/.config/shed-test/cred.json"] });
    expect(r.stdout).toBe("shed 7\n");
    const tar = await client.getTar({ path: "/home/shed/.config/shed-test" });
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).includes(Buffer.from('{"k":1}'))).toBe(true);
    const err = await client
      .putTar({ dir: "/home/shed" }, Readable.from([rawTar([{ name: "../../etc/evil", body: "x" }])]))
      .catch((e: unknown) => e);
    expect((err as ShedError).details?.agentCode).toBe("TAR_REFUSED");
    expect((await runCollect(guest, { argv: ["test", "-e", "/etc/evil"] })).exitCode).toBe(1);
  });

  it("closes only a connection that sends a bad frame", async () => {
    const { connect } = await import("node:net");
    const frames = await new Promise<number[]>((resolve) => {
      const parser = new FrameParser();
      const types: number[] = [];
      const s = connect(agent.exec);
      s.on("connect", () => s.write(encodeFrame(FrameType.OPEN, 1, Buffer.from("not json"))));
      s.on("data", (b: Buffer) => types.push(...parser.push(b).map((f) => f.type)));
      s.on("error", () => {});
      s.on("close", () => resolve(types));
    });
    expect(frames).toEqual([FrameType.HELLO, FrameType.ERROR]);
    expect((await runCollect(guest, { argv: ["echo", "alive"] })).stdout).toBe("alive\n");
  });

  it("drains: in-flight work finishes, new work is refused", async () => {
    const proc = await guest.exec({ argv: ["sh", "-c", "read x; echo finished"], stdin: true });
    let out = "";
    proc.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr.resume();
    const drained = client.drain(30_000);
    await until("draining", async () => (await client.health()).draining);
    await expect(runCollect(guest, { argv: ["true"] })).rejects.toThrow(/draining/);
    proc.stdin?.end("go\n");
    expect(await drained).toBe(0);
    expect(await proc.exited).toBe(0);
    expect(out).toBe("finished\n");
  });
});
