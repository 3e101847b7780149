import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll } from "vitest";
import { stringify } from "yaml";
import { loadServerConfig } from "../../src/config/server-config.js";
import type { ServerInfo } from "../../src/protocol/api-types.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { removeAtEnd } from "./cli.js";

export interface TestServer extends RunningServer {
  dir: string;
  configFile: string;
  base: string;
  /** The server's API token (data_dir/api_token). */
  token: string;
  info(): Promise<ServerInfo>;
  /**
   * fetch against the API with the server's token; returns status and parsed body.
   * An `authorization` header given here replaces the token's ("" sends none).
   */
  api(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any }>;
}

/**
 * A real shed-server (in this process) on free loopback ports with its own data dir;
 * pass `existingDir` (a previous server's `dir`) to start again on that data dir.
 */
export async function startTestServer(extra: Record<string, unknown> = {}, existingDir?: string): Promise<TestServer> {
  const dir = existingDir ?? removeAtEnd(mkdtempSync(join(tmpdir(), "shed-test-server-")));
  const configFile = join(dir, "server.yaml");
  writeFileSync(
    configFile,
    stringify({
      name: "test",
      http_port: 0,
      ssh_port: 0,
      data_dir: join(dir, "data"),
      stop_timeout: "3s",
      ...extra,
    }),
  );
  const server = await startServer(loadServerConfig(configFile));
  const base = `http://127.0.0.1:${server.httpPort}`;
  const token = readFileSync(join(dir, "data", "api_token"), "utf8").trim();
  const api: TestServer["api"] = async (method, path, body, headers = {}) => {
    const { authorization = `Bearer ${token}`, ...rest } = headers;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(authorization ? { authorization } : {}),
        ...rest,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // SSE or empty
    }
    return { status: res.status, body: parsed };
  };
  let closing: Promise<void> | undefined;
  const test: TestServer = {
    ...server,
    dir,
    configFile,
    base,
    token,
    api,
    info: async () => (await api("GET", "/api/info")).body as ServerInfo,
    // Closing twice (a test, then the file's cleanup) closes once.
    close: () => {
      running.delete(test);
      closing ??= server.close();
      return closing;
    },
  };
  running.add(test);
  startedAny = true;
  return test;
}

const running = new Set<TestServer>();
let startedAny = false;

/** Closes every test server of this file that is still running; true if the file started any. */
export async function closeTestServers(): Promise<boolean> {
  await Promise.all([...running].map((s) => s.close().catch(() => {})));
  return startedAny;
}

/** One test server for a whole file, started before its tests (helpers/cleanup.ts closes it after them). */
export function useTestServer(got: (server: TestServer) => void, extra: Record<string, unknown> = {}): void {
  beforeAll(async () => {
    got(await startTestServer(extra));
  });
}

/** Reads a server-sent event stream into the list of events. */
export function parseSse(text: string): any[] {
  return text
    .split("\n\n")
    .map((block) =>
      block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .join(""),
    )
    .filter((d) => d !== "")
    .map((d) => JSON.parse(d));
}
