import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AgentClient } from "../../src/agent/client/agent-client.js";
import { unixDialer } from "../../src/agent/client/dialers.js";
import { REPO_ROOT } from "./cli.js";

/** The built agent (npm run build), as the VM image gets it. */
export const AGENT_DIR = join(REPO_ROOT, "dist", "agent");

export interface RunningAgent {
  proc: ChildProcess;
  /** The exec listener's socket path. */
  exec: string;
  control: string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  client(secret?: string): Promise<AgentClient>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

/**
 * Starts shed-agent on two Unix sockets in dir, with `command` as the program
 * and argv prefix that runs node (the host's node here; `docker run ...` for the
 * rootfs image). Resolves once it printed its listening line.
 */
export async function startAgent(
  dir: string,
  opts: { secretFile?: string; command?: string[]; socketDir?: string } = {},
): Promise<RunningAgent> {
  if (!existsSync(join(AGENT_DIR, "shed-agent.cjs")))
    throw new Error("dist/agent is missing: run `npm run build` first");
  const socketDir = opts.socketDir ?? dir;
  const command = opts.command ?? [process.execPath, join(AGENT_DIR, "shed-agent.cjs")];
  const args = [
    ...command.slice(1),
    "--listen",
    `exec=unix:${join(socketDir, "exec.sock")}`,
    "--listen",
    `control=unix:${join(socketDir, "control.sock")}`,
    ...(opts.secretFile ? ["--secret-file", opts.secretFile] : []),
  ];
  const proc = spawn(command[0] as string, args, { stdio: ["ignore", "ignore", "pipe"] });
  live.add(proc);
  let err = "";
  proc.stderr?.setEncoding("utf8").on("data", (t: string) => {
    err += t;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (err.includes("listening on")) resolve();
    };
    proc.stderr?.on("data", check);
    exited.then(() => reject(new Error(`shed-agent exited before listening: ${err}`)));
    setTimeout(() => reject(new Error(`shed-agent did not listen within 60 s: ${err}`)), 60_000).unref();
  });
  const exec = join(dir, "exec.sock");
  return {
    proc,
    exec,
    control: join(dir, "control.sock"),
    stderr: () => err,
    exited,
    client: (secret) =>
      AgentClient.connect({ dial: unixDialer(exec), ...(secret ? { secret } : {}), where: "the test agent" }),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}

/** Kills agents a failed test left behind. */
export function killAgents(): void {
  for (const p of live) p.kill("SIGKILL");
}

/** Polls until check() is true (no fixed sleeps standing in for readiness). */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A ustar archive built byte by byte, so tests can write entries no archiver would (../, absolute, devices). */
export function rawTar(
  entries: { name: string; type?: "0" | "2" | "3" | "5"; body?: string; link?: string }[],
): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, "utf8");
    h.write(e.type === "5" ? "0000755\0" : "0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
    h.write(
      `${Math.floor(Date.now() / 1000)
        .toString(8)
        .padStart(11, "0")}\0`,
      136,
    );
    h.write("        ", 148);
    h.write(e.type ?? "0", 156);
    if (e.link) h.write(e.link, 157, 100, "utf8");
    h.write("ustar\0", 257);
    h.write("00", 263);
    if (e.type === "3") {
      h.write("0000001\0", 329);
      h.write("0000003\0", 337);
    }
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
