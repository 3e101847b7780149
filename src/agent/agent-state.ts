import { VERSION } from "../core/version.js";

/**
 * What the whole agent process shares across connections: how much work is in
 * flight (exec, tar, forwards, relays) and whether it drains. Drain is one-way:
 * the host asks for it right before powering the VM off.
 */
export class AgentState {
  readonly startedAt = performance.now();
  readonly agentVersion = VERSION;
  private inFlightCount = 0;
  private drainingNow = false;
  private readonly idleWaiters = new Set<() => void>();
  private readonly drainListeners = new Set<() => void>();

  get inFlight(): number {
    return this.inFlightCount;
  }

  get draining(): boolean {
    return this.drainingNow;
  }

  get uptimeMs(): number {
    return Math.round(performance.now() - this.startedAt);
  }

  /** Counts one piece of work; the returned function (safe to call twice) ends it. */
  begin(): () => void {
    this.inFlightCount++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlightCount--;
      if (this.inFlightCount === 0) for (const w of this.idleWaiters) w();
    };
  }

  /** Tells subscribers (message streams) when draining starts. */
  onDrain(listener: () => void): () => void {
    this.drainListeners.add(listener);
    return () => this.drainListeners.delete(listener);
  }

  /** Stops taking new work and waits up to timeoutMs for in-flight work; resolves with how much still runs. */
  async drain(timeoutMs: number): Promise<number> {
    if (!this.drainingNow) {
      this.drainingNow = true;
      for (const l of this.drainListeners) l();
    }
    if (this.inFlightCount === 0) return 0;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
    return this.inFlightCount;
  }
}
