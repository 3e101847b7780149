import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { REPO_ROOT } from "./cli.js";
import { parseSse } from "./server.js";

/**
 * The packaged shed-server (dist/shed-server.mjs) as a child process on a
 * given data dir, for tests that kill it (SIGKILL, or its own fault injection)
 * and start it again on the same data dir.
 */
export interface PackagedServer {
  proc: ChildProcess;
  httpPort: number;
  token: string;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** Resolves with how it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** A lifecycle operation with server-sent events: its events, or `cut` when the connection dropped. */
  op(method: string, path: string, body?: unknown): Promise<{ events: any[]; cut: boolean; status: number }>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

/** Writes a server config for `dir` (data in dir/data) and returns its path. */
export function serverConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, "server.yaml");
  writeFileSync(
    file,
    stringify({ name: "crash", http_port: 0, ssh_port: 0, data_dir: join(dir, "data"), stop_timeout: "3s", ...extra }),
  );
  return file;
}

/** Starts the packaged server and waits for its ready line (or for it to exit: then rejects with its stderr). */
export function startPackaged(configFile: string, env: Record<string, string> = {}): Promise<PackagedServer> {
  const proc = spawn(process.execPath, [join(REPO_ROOT, "dist", "shed-server.mjs"), "serve", "--config", configFile], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  let err = "";
  let out = "";
  proc.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  let ready = false;
  return new Promise((resolve, reject) => {
    proc.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const complete = out.split("\n").slice(0, -1);
      const line = complete.find((l) => l.includes('"ready":true'));
      if (!line || ready) return;
      ready = true;
      const info = JSON.parse(line) as { http_port: number };
      const dataDir = join(configFile, "..", "data");
      const token = readFileSync(join(dataDir, "api_token"), "utf8").trim();
      const base = `http://127.0.0.1:${info.http_port}`;
      const request = (method: string, path: string, body: unknown, accept?: string) =>
        fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body !== undefined && !(body instanceof Uint8Array) ? { "content-type": "application/json" } : {}),
            ...(body instanceof Uint8Array ? { "content-type": "application/octet-stream" } : {}),
            ...(accept ? { accept } : {}),
          },
          body:
            body === undefined
              ? undefined
              : body instanceof Uint8Array
                ? new Blob([body as Uint8Array<ArrayBuffer>])
                : JSON.stringify(body),
        });
      resolve({
        proc,
        httpPort: info.http_port,
        token,
        stderr: () => err,
        exited,
        api: async (method, path, body) => {
          const res = await request(method, path, body);
          const text = await res.text();
          return { status: res.status, body: text ? JSON.parse(text) : undefined };
        },
        op: async (method, path, body) => {
          let status = 0;
          let text = "";
          try {
            const res = await request(method, path, body, "text/event-stream");
            status = res.status;
            text = await res.text();
          } catch {
            // The server died under the request (headers or body cut off).
            return { events: parseSse(text), cut: true, status };
          }
          return { events: status === 200 ? parseSse(text) : [JSON.parse(text)], cut: false, status };
        },
        stop: async () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
          await exited;
        },
      });
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`shed-server exited (${code ?? signal}) before ready:\n${err}`)),
    );
  });
}

/** Kills every packaged server a test file started that is still running (by its own pid). */
export async function stopAllPackaged(): Promise<void> {
  await Promise.all(
    [...live].map(
      (p) =>
        new Promise<void>((resolve) => {
          p.once("exit", () => resolve());
          p.kill("SIGKILL");
        }),
    ),
  );
}
