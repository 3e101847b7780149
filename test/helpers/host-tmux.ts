import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./cli.js";

/** Runs argv without blocking the event loop (a test server in this process must keep answering). */
export function runProcess(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const [cmd, ...args] = argv as [string, ...string[]];
  return new Promise((done, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

/** A tmux server on the host with its own socket: the terminal in which `shed attach` runs. */
export class HostTmux {
  /** Every one made, to kill at the end. */
  static readonly all: HostTmux[] = [];
  private readonly socket: string;
  private readonly conf: string;
  private started = false;

  constructor(private readonly env: NodeJS.ProcessEnv) {
    const dir = tempDir("hosttmux");
    this.socket = join(dir, "sock");
    this.conf = join(dir, "tmux.conf");
    // Panes stay after their command ends, so the output can be read.
    writeFileSync(this.conf, "set -g remain-on-exit on\nset -g history-limit 10000\n");
    HostTmux.all.push(this);
  }

  tmux(...args: string[]): string {
    const env = { ...this.env };
    delete env.TMUX;
    delete env.TMUX_PANE;
    const r = spawnSync("tmux", ["-S", this.socket, "-f", this.conf, ...args], { env, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`host tmux ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /**
   * Runs argv in a new window (the first one makes the session), 160x40. A
   * shell around it prints how it ended: this tmux reaps its panes' processes
   * late at times, so the pane's own dead flag and status are not used.
   */
  run(window: string, argv: string[]): void {
    const wrapped = this.wrap(window, argv);
    if (!this.started) this.tmux("new-session", "-d", "-s", "host", "-x", "160", "-y", "40", "-n", window, ...wrapped);
    else this.tmux("new-window", "-d", "-t", "host:", "-n", window, ...wrapped);
    this.started = true;
  }

  respawn(window: string, argv: string[]): void {
    this.tmux("respawn-pane", "-k", "-t", `=host:${window}`, ...this.wrap(window, argv));
  }

  private readonly runs = new Map<string, number>();

  private wrap(window: string, argv: string[]): string[] {
    const run = (this.runs.get(window) ?? 0) + 1;
    this.runs.set(window, run);
    return ["--", "sh", "-c", '"$@"; echo "[run $0 ended: exit $?]"', String(run), ...argv];
  }

  /** undefined while the window's latest command runs, else how it ended ("exit N"). */
  ended(window: string): string | undefined {
    const run = this.runs.get(window);
    return new RegExp(`\\[run ${run} ended: (exit \\d+)\\]`).exec(this.screen(window))?.[1];
  }

  type(window: string, text: string): void {
    this.tmux("send-keys", "-t", `=host:${window}`, "-l", "--", text);
    this.tmux("send-keys", "-t", `=host:${window}`, "Enter");
  }

  keys(window: string, ...keys: string[]): void {
    this.tmux("send-keys", "-t", `=host:${window}`, ...keys);
  }

  /** The screen and its scrollback. */
  screen(window: string): string {
    return this.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", `=host:${window}`);
  }

  kill(): void {
    if (this.started) spawnSync("tmux", ["-S", this.socket, "kill-server"], { stdio: "ignore" });
    this.started = false;
  }
}
