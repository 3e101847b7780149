import { ShedError } from "../../core/errors.js";
import { bootError } from "./boot-error.js";
import { readConfigDisk } from "./config-disk.js";
import { type InstanceFile, instancePath, removeInstanceDir } from "./instance-dir.js";
import { type InstanceMeta, readInstanceMeta, updateInstanceMeta } from "./instance-meta.js";
import { isAlive, killProcess, reattach, signalProcess, waitForExit } from "./process.js";
import type { StopOutcome } from "./vm-machine.js";
import { pollUntil } from "./wait.js";

/**
 * What every VM machine does the same way, whatever its hypervisor: read its metadata afresh
 * (the object holds nothing a restarted server would lack), tell whether its hypervisor runs,
 * wait for the agent, stop gracefully then by SIGKILL, and clean up after itself.
 */
export abstract class VmMachineBase {
  /** The hypervisor's name in messages ("QEMU", "Firecracker", "vfkit"). */
  protected abstract readonly hypervisorLabel: string;
  /** The instance file that shows why a boot failed (the serial console). */
  protected readonly bootLog: InstanceFile = "serialLog";

  protected constructor(
    readonly dataDir: string,
    readonly name: string,
    readonly dir: string,
  ) {}

  meta(): InstanceMeta {
    const m = readInstanceMeta(this.dir);
    if (!m) throw new ShedError("SHED_NOT_FOUND", `VM instance ${this.name} has no metadata in ${this.dir}`);
    return m;
  }

  isRunning(): boolean {
    return isAlive(this.meta().hypervisor);
  }

  async status(): Promise<{ running: boolean; foundDead: boolean }> {
    const r = await reattach(this.dir);
    return { running: r?.running ?? false, foundDead: r?.foundDead ?? false };
  }

  /** The per-VM secret the host proves to the agent: read from the config disk, never logged. */
  protected secret(): string {
    return readConfigDisk(instancePath(this.dir, "configDisk")).secret;
  }

  async waitForAgent(timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
    const started = Date.now();
    const hypervisor = this.meta().hypervisor;
    const r = await pollUntil({
      ready: () => probe().catch(() => false),
      failed: () => (isAlive(hypervisor) ? undefined : `${this.hypervisorLabel} exited while the guest was booting`),
      timeoutMs,
      intervalMs: 250,
    });
    if (!r.ok) {
      const why =
        r.reason === "timeout" ? `the guest agent did not answer within ${Math.round(timeoutMs / 1000)} s` : r.reason;
      throw bootError(
        this.dir,
        `VM ${this.name}: ${why}`,
        this.bootLog,
        r.reason === "timeout" ? "TIMEOUT" : "BACKEND_ERROR",
      );
    }
    return Date.now() - started;
  }

  /**
   * Asks the guest to shut down (`request`: ACPI power button, Ctrl+Alt+Del, SIGTERM to the
   * hypervisor), waits up to `timeoutMs`, then SIGKILL. The metadata records which it was.
   */
  protected async stopWith(request: () => Promise<void>, timeoutMs: number): Promise<StopOutcome> {
    const hypervisor = this.meta().hypervisor;
    if (!hypervisor || !isAlive(hypervisor)) {
      await reattach(this.dir);
      return "not-running";
    }
    let outcome: StopOutcome = "powerdown";
    try {
      await request();
      if (!(await waitForExit(hypervisor, timeoutMs))) outcome = "killed";
    } catch {
      // The hypervisor did not take the request (wedged, or exiting already): the kill below settles it.
      outcome = isAlive(hypervisor) ? "killed" : "powerdown";
    }
    if (outcome === "killed") {
      signalProcess(hypervisor, "SIGKILL");
      await waitForExit(hypervisor, 10_000);
    }
    await this.settleStopped(outcome);
    return outcome;
  }

  async kill(): Promise<void> {
    const hypervisor = this.meta().hypervisor;
    if (hypervisor && isAlive(hypervisor)) {
      signalProcess(hypervisor, "SIGKILL");
      await waitForExit(hypervisor, 10_000);
    }
    await this.settleStopped("killed");
  }

  async remove(): Promise<void> {
    if (readInstanceMeta(this.dir)) {
      await this.kill();
      await this.freeHostResources();
    }
    removeInstanceDir(this.dataDir, this.name);
  }

  /** What the instance holds outside its directory (Firecracker: its TAP device). */
  protected async freeHostResources(): Promise<void> {}

  protected async settleStopped(how: "powerdown" | "killed"): Promise<void> {
    const meta = this.meta();
    // Helpers (pasta, virtiofsd) serve nothing once the hypervisor is gone; this ends any that stayed.
    for (const h of Object.values(meta.helpers)) await killProcess(h, 2_000);
    updateInstanceMeta(this.dir, (m) => ({
      ...m,
      hypervisor: null,
      helpers: {},
      ...(meta.hypervisor ? { last_stop: how, last_stopped_at: new Date().toISOString() } : {}),
    }));
  }
}
