import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import { docker as mainDocker } from "./docker.js";
import { waitFor } from "./provision.js";

/**
 * A dockerd of the test's own, beside the main one: its own data root, exec
 * root (and so its own containerd), pid file and socket, no bridge network and
 * no iptables rules. Stopping and starting it cannot break the engine the
 * other test files use. Images are copied in from the main engine.
 */
export class PrivateEngine {
  readonly dir: string;
  readonly socket: string;
  readonly docker: Docker;
  private daemon: ChildProcess | undefined;

  constructor() {
    // Short: the socket path must fit in a sockaddr_un (108 bytes).
    this.dir = mkdtempSync(join(tmpdir(), "shed-eng-"));
    this.socket = join(this.dir, "docker.sock");
    this.docker = new Docker({ socketPath: this.socket });
  }

  get running(): boolean {
    return this.daemon !== undefined;
  }

  /** Starts dockerd and waits until it answers (a fresh one, or again on the same data root). */
  async start(): Promise<void> {
    if (this.daemon) throw new Error("the private engine is already running");
    const log = openSync(join(this.dir, "dockerd.log"), "a");
    // In a network namespace of its own: a dockerd with --bridge=none deletes the host's docker0 at start
    // (moby's removeDefaultBridgeInterface), which breaks the main engine's bridge for every other test.
    // unshare execs dockerd in place (no fork), so the pid and its signals are dockerd's.
    const daemon = spawn(
      "unshare",
      [
        "--net",
        "dockerd",
        `--data-root=${join(this.dir, "data")}`,
        `--exec-root=${join(this.dir, "exec")}`,
        `--pidfile=${join(this.dir, "docker.pid")}`,
        `--host=unix://${this.socket}`,
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
      ],
      { stdio: ["ignore", log, log] },
    );
    this.daemon = daemon;
    let exited = false;
    daemon.once("exit", () => {
      exited = true;
      if (this.daemon === daemon) this.daemon = undefined;
    });
    try {
      await waitFor(
        "the private dockerd to answer",
        async () => {
          if (exited) throw new Error(`dockerd exited at start:\n${this.logTail()}`);
          return this.docker.ping().then(
            () => true,
            () => false,
          );
        },
        30_000,
      );
    } catch (err) {
      await this.stop().catch(() => {});
      throw err;
    }
  }

  /** Stops dockerd as a service manager does (SIGTERM: it stops its containers, then exits) and waits for it. */
  async stop(): Promise<void> {
    const daemon = this.daemon;
    if (!daemon) return;
    const gone = new Promise<void>((resolve) => daemon.once("exit", () => resolve()));
    daemon.kill("SIGTERM");
    await gone;
  }

  /** Copies an image of the main engine into this one. */
  async loadImage(image: string): Promise<void> {
    const tar = await mainDocker.getImage(image).get();
    const res = await this.docker.loadImage(tar);
    const out: Buffer[] = [];
    res.on("data", (c: Buffer) => out.push(c));
    await new Promise<void>((resolve, reject) => {
      res.on("end", resolve);
      res.on("error", reject);
    });
    const text = Buffer.concat(out).toString();
    if (!text.includes("Loaded image")) throw new Error(`loading ${image} failed: ${text}`);
  }

  /** Runs argv in a container of this engine (to check what Shed did, independently of it). */
  async exec(container: string, argv: string[], user = "shed"): Promise<{ code: number; stdout: string }> {
    const exec = await this.docker
      .getContainer(container)
      .exec({ Cmd: argv, User: user, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({});
    const out: Buffer[] = [];
    const stdout = new PassThrough();
    stdout.on("data", (c: Buffer) => out.push(c));
    this.docker.modem.demuxStream(stream, stdout, new PassThrough().resume());
    await new Promise((resolve) => stream.on("end", resolve));
    let info = await exec.inspect();
    while (info.Running) info = await exec.inspect();
    return { code: info.ExitCode ?? -1, stdout: Buffer.concat(out).toString() };
  }

  /** Stops dockerd (its containers with it) and removes everything it kept. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(): string {
    try {
      return readFileSync(join(this.dir, "dockerd.log"), "utf8").split("\n").slice(-20).join("\n");
    } catch {
      return "(no dockerd log)";
    }
  }
}
