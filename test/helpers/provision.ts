import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir } from "./cli.js";
import { dockerExec } from "./docker.js";
import { parseSse, type TestServer } from "./server.js";

/** Helpers for the provisioning tests: local_dir workspaces, operations as event lists, processes in a shed. */

/** A file's text, or a symlink to `link` (a path as the shed sees it), or text with a mode. */
export type FileSpec = string | { link: string } | { content: string; mode: number };

/**
 * A directory to use as a local_dir workspace, owned by uid 1000 (user shed in
 * shed-base). `.sh` files are executable unless a mode says otherwise.
 */
export function workspace(files: Record<string, FileSpec>): string {
  const dir = tempDir("ws");
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(dir: string, files: Record<string, FileSpec>): void {
  for (const [rel, spec] of Object.entries(files)) {
    const file = join(dir, rel);
    mkdirSync(dirname(file), { recursive: true });
    rmSync(file, { force: true });
    if (typeof spec === "object" && "link" in spec) {
      spawnSync("ln", ["-s", spec.link, file]);
      continue;
    }
    const content = typeof spec === "string" ? spec : spec.content;
    writeFileSync(file, content);
    chmodSync(file, typeof spec === "string" ? (rel.endsWith(".sh") ? 0o755 : 0o644) : spec.mode);
  }
  const chown = spawnSync("chown", ["-hR", "1000:1000", dir]);
  if (chown.status !== 0) throw new Error(`chown failed: ${chown.stderr}`);
}

/** Runs a lifecycle operation with server-sent events; returns every event. */
export async function op(server: TestServer, method: string, path: string, body?: unknown): Promise<any[]> {
  const res = await server.api(method, path, body, { accept: "text/event-stream" });
  if (res.status !== 200) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return parseSse(res.body as string);
}

/** The shed of an operation's `result` event (fails with every event shown when there is none). */
export function resultOf(events: any[]): any {
  const last = events.at(-1);
  if (last?.type !== "result") throw new Error(`the operation did not end with a result:\n${JSON.stringify(events)}`);
  return last.shed;
}

export function stepEnd(events: any[], step: string): any {
  return events.find((e) => e.type === "step_end" && e.step === step);
}

export function warningsOf(events: any[], step?: string): string[] {
  return events.filter((e) => e.type === "warning" && (!step || e.step === step)).map((e) => e.message as string);
}

/** Text of the `output` events of one step, in order. */
export function outputOf(events: any[], step: string): string {
  return events
    .filter((e) => e.type === "output" && e.step === step)
    .map((e) => e.text)
    .join("");
}

export async function createLocal(server: TestServer, name: string, dir: string, extra: Record<string, unknown> = {}) {
  const events = await op(server, "POST", "/api/sheds", { name, local_dir: dir, ...extra });
  return { events, shed: resultOf(events) };
}

export async function getShed(server: TestServer, name: string): Promise<any> {
  const res = await server.api("GET", `/api/sheds/${name}`);
  if (res.status !== 200) throw new Error(`GET ${name}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function hooksOf(server: TestServer, name: string): Promise<Record<string, any>> {
  return (await getShed(server, name)).provision.hooks;
}

/** Command lines of every process in the shed, seen as root (independently of Shed). */
export async function processes(name: string): Promise<string[]> {
  const ps = await dockerExec(name, ["ps", "-eo", "args="], "root");
  if (ps.code !== 0) throw new Error(`ps failed: ${ps.stderr}`);
  return ps.stdout.split("\n").map((l) => l.trim());
}

/** A file's content in the shed (as root), or undefined when it does not exist. */
export async function guestFile(name: string, path: string): Promise<string | undefined> {
  const r = await dockerExec(name, ["sh", "-c", 'test -f "$1" || exit 3; cat -- "$1"', "sh", path], "root");
  return r.code === 3 ? undefined : r.stdout;
}

/** Polls `check` until it returns true or `timeoutMs` passes (bounded waiting for a condition, never a fixed sleep). */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
