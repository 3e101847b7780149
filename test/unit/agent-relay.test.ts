import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readlinkSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { encodeFrame, FRAME, FrameReader, startAgentRelay } from "../../src/guest/agent-relay.js";
import type { ExecProcess, GuestExec } from "../../src/guest/exec.js";

/** The relay's Perl script run on this host: the guest side of GuestExec without a guest. */
const hostExec: GuestExec = {
  exec: async (spec) => {
    const [cmd, ...args] = spec.argv;
    const child = spawn(cmd ?? "false", args, { stdio: ["pipe", "pipe", "pipe"] });
    const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 255)));
    const proc: ExecProcess = {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exited,
      resize: async () => {},
      signal: async (s) => {
        child.kill(s);
      },
    };
    return proc;
  },
};

/** An "agent channel" that answers every chunk with the chunk reversed. */
function reversingChannel(): Duplex {
  const ch: Duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      ch.push(Buffer.from(chunk).reverse());
      cb();
    },
    final(cb) {
      ch.push(null);
      cb();
    },
  });
  return ch;
}

function ask(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(path, () => sock.write(text));
    sock.on("data", (d) => {
      resolve(d.toString());
      sock.end();
    });
    sock.on("error", reject);
  });
}

describe("frames", () => {
  it("decodes whatever the chunking", () => {
    const bytes = Buffer.concat([encodeFrame(FRAME.OPEN, 7), encodeFrame(FRAME.DATA, 7, Buffer.from("hello"))]);
    const reader = new FrameReader();
    const frames = [...bytes].flatMap((b) => reader.push(Buffer.from([b])));
    expect(frames.map((f) => [f.type, f.id, f.data.toString()])).toEqual([
      [FRAME.OPEN, 7, ""],
      [FRAME.DATA, 7, "hello"],
    ]);
  });
});

describe("the agent relay script", () => {
  it("serves concurrent connections through channels, privately, and removes its socket when closed", async () => {
    const base = join(tmpdir(), `relay-${randomBytes(4).toString("hex")}`);
    mkdirSync(base, { mode: 0o700 });
    const dir = join(base, "agent");
    const link = join(base, "stable.sock");
    let opened = 0;
    const relay = await startAgentRelay(
      hostExec,
      dir,
      async () => {
        opened++;
        return reversingChannel();
      },
      { link },
    );
    expect(readlinkSync(link)).toBe(relay.socketPath);
    const second = await startAgentRelay(hostExec, join(base, "second"), async () => reversingChannel(), { link });
    expect(readlinkSync(link)).toBe(second.socketPath);
    second.close();
    await second.exited;
    // The link followed the latest relay and went with it; the first relay still serves its own socket.
    expect(existsSync(link)).toBe(false);
    expect(relay.socketPath).toBe(join(dir, "agent.sock"));
    expect(lstatSync(dir).mode & 0o7777).toBe(0o700);
    expect(lstatSync(relay.socketPath).isSocket()).toBe(true);
    expect(lstatSync(relay.socketPath).mode & 0o777).toBe(0o600);

    const answers = await Promise.all([ask(relay.socketPath, "abc"), ask(relay.socketPath, "12345")]);
    expect(answers).toEqual(["cba", "54321"]);
    expect(opened).toBe(2);

    relay.close();
    expect(await relay.exited).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });

  it("refuses a directory that already exists", async () => {
    const dir = join(tmpdir(), `relay-${randomBytes(4).toString("hex")}`);
    mkdirSync(dir, { mode: 0o700 });
    await expect(
      startAgentRelay(hostExec, dir, async () => reversingChannel(), { link: join(dir, "l") }),
    ).rejects.toThrow(/cannot create/);
  });
});
