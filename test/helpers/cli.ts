import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO_ROOT = resolve(__dirname, "../..");
export const SHED_BIN = join(REPO_ROOT, "bin", "shed");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A CLI user: its own config dir (key pair, known_hosts, ssh_config), talking to real servers. */
export class CliUser {
  readonly dir: string;
  readonly configFile: string;

  constructor(readonly extraEnv: Record<string, string> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "shed-test-cli-"));
    this.configFile = join(this.dir, "config.yaml");
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, SHED_CONFIG: this.configFile, HOME: this.dir, ...this.extraEnv };
  }

  /** Runs bin/shed (the packaged CLI) and collects its output. */
  run(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
    return new Promise((resolveRun, reject) => {
      const child = spawn(SHED_BIN, args, {
        env: { ...this.env, ...opts.env },
        stdio: ["pipe", "pipe", "pipe"],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.stderr.on("data", (c: Buffer) => err.push(c));
      child.on("error", reject);
      child.on("close", (code) =>
        resolveRun({
          code: code ?? -1,
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        }),
      );
      child.stdin.end(opts.input ?? "");
    });
  }
}

// --- A test file's CLI users, temp dirs and servers, and their cleanup ---------------------------

const tempDirs: string[] = [];
const runtimeDirs: string[] = [];

export function tempDir(label: string): string {
  return removeAtEnd(mkdtempSync(join(tmpdir(), `shed-test-${label}-`)));
}

/** Registers a directory to be removed by removeTempDirs(). */
export function removeAtEnd(dir: string): string {
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * A CLI user with its own runtime dir for its multiplexed SSH masters, so they
 * can be closed at the end (a test server's close() waits for open SSH
 * connections).
 */
export function newCliUser(extraEnv: Record<string, string> = {}): CliUser {
  const runtimeDir = tempDir("rt");
  runtimeDirs.push(runtimeDir);
  const cli = new CliUser({ XDG_RUNTIME_DIR: runtimeDir, ...extraEnv });
  removeAtEnd(cli.dir);
  return cli;
}

export function closeAllMasters(): void {
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  for (const runtimeDir of runtimeDirs) {
    const dir = join(runtimeDir, `shed-ssh-${uid}`);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) {
      const socket = join(dir, entry);
      // A master may exit on its own between the listing and this look (ControlPersist ran out).
      const st = statSync(socket, { throwIfNoEntry: false });
      if (!st?.isSocket()) continue;
      spawnSync("ssh", ["-o", `ControlPath=${socket}`, "-O", "exit", "shed-test-master"], { stdio: "ignore" });
    }
  }
}

export function show(res: CliResult): string {
  return `exit ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`;
}

/** Runs the CLI and expects exit 0. */
export async function cliOk(cli: CliUser, args: string[], env?: Record<string, string>): Promise<CliResult> {
  const res = await cli.run(args, env ? { env } : {});
  if (res.code !== 0) throw new Error(`shed ${args.join(" ")} failed\n${show(res)}`);
  return res;
}

/** Parses stdout as exactly one JSON document, with the whole result in the failure message. */
export function json(res: CliResult): any {
  try {
    return JSON.parse(res.stdout);
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${res.code}):\n${res.stdout}\nstderr:\n${res.stderr}`);
  }
}
