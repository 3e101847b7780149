import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const SHED_BIN = resolve(__dirname, "../../bin/shed");

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
