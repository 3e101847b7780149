import { EventEmitter } from "node:events";
import { connect, type Socket } from "node:net";
import { ShedError } from "../../core/errors.js";

/**
 * A small client for QMP, QEMU's JSON control protocol, over the instance's Unix socket. QEMU
 * greets, the client negotiates capabilities, then sends commands one at a time and reads
 * answers and asynchronous events from the same stream. Messages are JSON documents ending in
 * CRLF; a chunk from the socket may hold part of one message or several, so input is split on
 * newlines and partial lines are kept until complete.
 */

/** The most a single QMP message may be before the connection is treated as broken. */
const MAX_LINE = 1024 * 1024;

export class QmpLineParser {
  private buf = "";

  /** Feeds a chunk; returns the complete messages it finished. Throws on a line that is not JSON. */
  push(chunk: string | Buffer): unknown[] {
    this.buf += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    const out: unknown[] = [];
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl === -1) break;
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line === "") continue;
      out.push(JSON.parse(line));
    }
    if (this.buf.length > MAX_LINE) throw new Error(`QMP message longer than ${MAX_LINE} bytes`);
    return out;
  }
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpStatus {
  status: string;
  running: boolean;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  command: string;
}

export class QmpClient {
  private readonly events = new EventEmitter();
  private readonly parser = new QmpLineParser();
  private queue: Pending[] = [];
  private closedError: Error | undefined;
  private greeted: ((v: unknown) => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly path: string,
  ) {
    socket.on("data", (chunk) => this.onData(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("QMP connection closed")));
  }

  /** Connects, waits for QEMU's greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 5_000): Promise<QmpClient> {
    const socket = connect({ path });
    const client = new QmpClient(socket, path);
    const timer = setTimeout(() => socket.destroy(new Error(`no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<unknown>((resolve, reject) => {
        client.greeted = resolve;
        socket.once("error", reject);
        socket.once("close", () => reject(client.closedError ?? new Error("QMP connection closed")));
      });
      await client.execute("qmp_capabilities");
      return client;
    } catch (err) {
      socket.destroy();
      throw qmpError(path, "connect", err);
    } finally {
      clearTimeout(timer);
    }
  }

  private onData(chunk: Buffer): void {
    let messages: unknown[];
    try {
      messages = this.parser.push(chunk);
    } catch (err) {
      this.socket.destroy(err as Error);
      return;
    }
    for (const m of messages) this.onMessage(m as Record<string, unknown>);
  }

  private onMessage(m: Record<string, unknown>): void {
    if ("QMP" in m) {
      this.greeted?.(m);
      this.greeted = undefined;
      return;
    }
    if (typeof m.event === "string") {
      this.events.emit("event", m as unknown as QmpEvent);
      return;
    }
    // QMP answers commands in order; one command is in flight at a time per sender here.
    const p = this.queue.shift();
    if (!p) return;
    if ("error" in m) {
      const e = m.error as { class?: string; desc?: string };
      p.reject(new Error(`${p.command}: ${e.class ?? "Error"}: ${e.desc ?? "unknown error"}`));
    } else {
      p.resolve(m.return);
    }
  }

  private fail(err: Error): void {
    if (!this.closedError) this.closedError = err;
    const q = this.queue;
    this.queue = [];
    for (const p of q) p.reject(err);
  }

  /** Sends one command and resolves with its `return` value. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject, command });
      this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  async queryStatus(): Promise<QmpStatus> {
    const r = (await this.execute("query-status")) as { status?: unknown; running?: unknown };
    return { status: String(r.status), running: r.running === true };
  }

  /** ACPI power button press: the guest's power-button handler shuts it down cleanly. */
  async systemPowerdown(): Promise<void> {
    await this.execute("system_powerdown");
  }

  /**
   * Ends QEMU at once. QEMU may close the socket before or after answering, so a closed
   * connection counts as success.
   */
  async quit(): Promise<void> {
    try {
      await this.execute("quit");
    } catch (err) {
      if (!this.closedError) throw err;
    }
  }

  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.events.on("event", listener);
    return () => this.events.off("event", listener);
  }

  /** Resolves with the next event of that name; rejects at the deadline or when the connection closes. */
  waitForEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const off = this.onEvent((e) => {
        if (e.event !== name) return;
        cleanup();
        resolve(e);
      });
      const onClose = () => {
        cleanup();
        reject(new Error(`QMP connection closed before ${name}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        off();
        clearTimeout(timer);
        this.socket.off("close", onClose);
      };
      this.socket.once("close", onClose);
    });
  }

  /** Resolves once QEMU has closed the connection (it does so as it exits). */
  closed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once("close", () => resolve()));
  }

  close(): void {
    this.socket.destroy();
  }

  get socketPath(): string {
    return this.path;
  }
}

function qmpError(path: string, what: string, err: unknown): ShedError {
  const msg = err instanceof Error ? err.message : String(err);
  return new ShedError("BACKEND_ERROR", `QEMU control socket ${path}: ${what} failed: ${msg}`, {
    cause: err,
    hint: "QEMU may have exited; see the instance's hypervisor.err and serial.log",
  });
}
