/**
 * Fuzzing shed-agent's protocol through the built agent (dist/agent) on a Unix socket: each
 * case is one connection that sends arbitrary bytes, or a valid or broken hello followed by
 * frames of every type with random streams and payloads (random bytes, random JSON, and some
 * valid requests: health, a forward to a closed port, a tar of a missing path, a short exec).
 *
 * Budget: about 30 s for 10,000 connections (~2 ms each). SHED_FUZZ_RUNS changes the count;
 * SHED_FUZZ_SEED (and SHED_FUZZ_PATH) replay a failure fast-check printed; CI runs the fixed seed.
 *
 * Properties: what the agent sends is always well-formed frames, starting with its HELLO; an
 * ERROR on stream 0 is its last frame; the connection always ends (a per-case deadline catches
 * a hang). After all cases the agent still runs, logged no internal error, has no work left in
 * flight, and serves a good client (health, exec).
 */
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentGuestExec } from "../../src/agent/client/agent-guest-exec.js";
import { runCollect } from "../../src/guest/exec.js";
import {
  encodeFrame,
  encodeJsonFrame,
  type Frame,
  FrameParser,
  FrameType,
  type FrameTypeCode,
} from "../../src/protocol/agent-frames.js";
import { killAgents, type RunningAgent, startAgent, until } from "../helpers/agent.js";
import { removeAtEnd } from "../helpers/cli.js";
import { anyString, fuzzParams } from "./arbitraries.js";

const dir = removeAtEnd(mkdtempSync(join(tmpdir(), "shed-fuzz-agent-")));
let agent: RunningAgent;

beforeAll(async () => {
  agent = await startAgent(dir);
});
afterAll(async () => {
  await agent?.stop();
  killAgents();
});

const CASE_DEADLINE_MS = 5_000;
const types = Object.values(FrameType) as FrameTypeCode[];
const hostHello = { protocol: "shed-agent", role: "host", versions: [1], capabilities: [] };

const validRequests = fc.constantFrom<unknown>(
  { kind: "health" },
  { kind: "tcp", port: 1 },
  { kind: "get-tar", path: "/nonexistent/shed-fuzz" },
  { kind: "exec", argv: ["true"], user: "root" },
  { kind: "exec", argv: ["cat"], user: "root", stdin: true },
  { kind: "subscribe", watch: [] },
  { kind: "unix", path: "/nonexistent/sock" },
);

const anyJson = fc.oneof(
  validRequests,
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({ kind: fc.constantFrom("exec", "put-tar", "tcp", "drain", "x"), argv: fc.array(anyString) }),
  fc.record({ resize: fc.record({ cols: fc.integer(), rows: fc.integer() }) }),
  fc.record({ signal: fc.constantFrom("SIGTERM", "SIGKILL", "SIGFOO", "TERM") }),
);

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  anyJson.map((v) => Buffer.from(JSON.stringify(v) ?? "null")),
  fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((n) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  }),
);

const frame = fc
  .tuple(fc.constantFrom(...types), fc.constantFrom(0, 1, 2, 3, 5, 2 ** 32 - 1), payload)
  .map(([t, s, p]) => encodeFrame(t, s, p));

const hello = fc.oneof(
  { weight: 6, arbitrary: fc.constant(encodeJsonFrame(FrameType.HELLO, 0, hostHello)) },
  { weight: 1, arbitrary: fc.constant(encodeJsonFrame(FrameType.HELLO, 0, { ...hostHello, versions: [99] })) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
);

/** What a case sends: one buffer cut into chunks at random places. */
const sent = fc
  .oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(hello, fc.array(frame, { maxLength: 8 }), fc.uint8Array({ maxLength: 16 }))
        .map(([h, fs, tail]) => Buffer.concat([h, ...fs, tail])),
    },
  )
  .chain((bytes) =>
    fc
      .uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: 4 })
      .map((cuts) => ({ bytes, cuts: cuts.filter((c) => c < bytes.length).sort((a, b) => a - b) })),
  );

function exchange(bytes: Buffer, cuts: number[]): Promise<{ frames: Frame[]; malformed: string | undefined }> {
  return new Promise((resolve, reject) => {
    const parser = new FrameParser();
    const frames: Frame[] = [];
    let malformed: string | undefined;
    const s = connect(agent.exec);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("the agent neither answered nor closed within the deadline"));
    }, CASE_DEADLINE_MS);
    s.on("connect", () => {
      let at = 0;
      for (const c of [...cuts, bytes.length]) {
        s.write(bytes.subarray(at, c));
        at = c;
      }
      s.end();
    });
    s.on("data", (b: Buffer) => {
      if (malformed) return;
      try {
        frames.push(...parser.push(b));
      } catch (err) {
        malformed = (err as Error).message;
      }
    });
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve({ frames, malformed });
    });
  });
}

describe("shed-agent under arbitrary input", () => {
  it("answers every connection with well-formed frames and keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(sent, async ({ bytes, cuts }) => {
        const { frames, malformed } = await exchange(bytes, cuts);
        expect(malformed).toBeUndefined();
        expect(frames[0]?.type).toBe(FrameType.HELLO);
        const fatal = frames.findIndex((f) => f.type === FrameType.ERROR && f.stream === 0);
        if (fatal >= 0) expect(fatal).toBe(frames.length - 1);
        expect(agent.proc.exitCode).toBeNull();
      }),
      fuzzParams<[{ bytes: Buffer; cuts: number[] }]>(),
    );
    expect(agent.stderr()).not.toContain("internal error");
    const c = await agent.client();
    await until("no work left in flight", async () => (await c.health()).inFlight === 0);
    const r = await runCollect(new AgentGuestExec(c), { user: "root", argv: ["echo", "still serving"] });
    expect(r).toEqual({ exitCode: 0, stdout: "still serving\n", stderr: "" });
    c.close();
  });
});
