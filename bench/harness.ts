import { type SpawnOptions, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const SHED = join(ROOT, "bin", "shed");

export interface Run {
  code: number;
  ms: number;
  stdout: string;
  stderr: string;
}

/** Runs a program (argv, no shell) and times it from spawn to exit. */
export function run(argv: string[], opts: SpawnOptions & { quiet?: boolean } = {}): Promise<Run> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const [cmd, ...args] = argv;
    const child = spawn(cmd as string, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (c: Buffer) => {
      if (!opts.quiet) out.push(c);
    });
    child.stderr?.on("data", (c: Buffer) => {
      if (!opts.quiet) err.push(c);
    });
    child.on("error", rej);
    child.on("close", (code) =>
      res({
        code: code ?? -1,
        ms: performance.now() - t0,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
  });
}

export async function must(argv: string[], opts: SpawnOptions & { quiet?: boolean } = {}): Promise<Run> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export interface BenchServer {
  env: NodeJS.ProcessEnv;
  dir: string;
  pid: number;
  /** What the server labels its Docker objects with (dev.shed.server-id), to find its leftovers. */
  serverId: string;
  /** SIGTERM, resolved once the server has exited. */
  stop(): Promise<void>;
}

/** A packaged shed-server on free ports with a CLI config added to it; `extra` is more server config (YAML lines). */
export async function startBenchServer(extra = ""): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), "shed-bench-"));
  writeFileSync(
    join(dir, "server.yaml"),
    `name: bench\nhttp_port: 0\nssh_port: 0\ndata_dir: ${dir}/data\n${extra.includes("stop_timeout:") ? "" : "stop_timeout: 4s\n"}${extra}`,
  );
  const server = spawn("node", [join(ROOT, "dist", "shed-server.mjs"), "serve", "--config", join(dir, "server.yaml")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((res) => server.once("exit", () => res()));
  const ready = await new Promise<{ http_port: number }>((res, rej) => {
    let buf = "";
    server.stdout?.on("data", (c: Buffer) => {
      buf += c.toString();
      const line = buf.split("\n")[0];
      if (buf.includes("\n") && line) res(JSON.parse(line));
    });
    server.on("exit", (code) => rej(new Error(`shed-server exited ${code}`)));
  });
  const env = { ...process.env, SHED_CONFIG: join(dir, "cli", "config.yaml") };
  // The token through the environment for this one command, as a script would pass it.
  const token = readFileSync(join(dir, "data", "api_token"), "utf8").trim();
  await must([SHED, "server", "add", "127.0.0.1", "--port", String(ready.http_port), "--name", "bench"], {
    env: { ...env, SHED_TOKEN: token },
  });
  const serverId = readFileSync(join(dir, "data", "server_id"), "utf8").trim();
  return {
    env,
    dir,
    pid: server.pid as number,
    serverId,
    stop: () => {
      if (server.exitCode === null && server.signalCode === null) server.kill("SIGTERM");
      return exited;
    },
  };
}

export function makeRepo(dir: string, files: Record<string, string>): string {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    mkdirSync(join(full, ".."), { recursive: true });
    writeFileSync(full, content);
    if (path.endsWith(".sh")) chmodSync(full, 0o755);
  }
  return dir;
}

/** A process's resident memory in MiB (Linux /proc). */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m?.[1]) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) / 1024;
}

/** Runs fn over items, at most `width` at a time. */
export async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}
