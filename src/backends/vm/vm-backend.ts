import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { CredentialConfig, VmConfig } from "../../config/server-config.js";
import { ShedError } from "../../core/errors.js";
import type { Warn } from "../../core/events.js";
import type { Shed } from "../../core/types.js";
import { copyCredentialsIn } from "../../guest/credential-copy.js";
import type { GuestExec } from "../../guest/exec.js";
import type { GuestUser } from "../../guest/guest-user.js";
import { prepareGuest } from "../../guest/install-state.js";
import { matchOwner } from "../../guest/local-dir-owner.js";
import type {
  Backend,
  CellResult,
  CheckedLocalDir,
  CreatedHandle,
  CreateSpec,
  Ownership,
  RemoveOptions,
  StorageResult,
} from "../backend.js";
import { AgentPool } from "./agent-pool.js";
import { CredentialSync } from "./credential-sync.js";
import { growRootFilesystem } from "./grow-disk.js";
import { instanceDir, listInstanceNames, removeInstanceDir, vmRootDir } from "./instance-dir.js";
import { type InstanceLocalDir, readInstanceMeta } from "./instance-meta.js";
import { instanceShed } from "./instance-shed.js";
import type { VmDriver, VmMachine } from "./vm-machine.js";
import { checkVmSize, resolveVmSize } from "./vm-size.js";

export interface VmBackendOptions {
  dataDir: string;
  vm: VmConfig;
}

/**
 * The seed's VM columns (QEMU, Firecracker, VZ), written once. A shed is an instance directory
 * (disk, config disk with the agent secret, metadata) and, while it runs, a detached hypervisor;
 * everything inside the guest goes through shed-agent: hooks, clone, exec, SSH, credentials as
 * tar with their live sync, drain. What differs per hypervisor (spawn, reach, stop, what it can
 * share) is the driver's (vm-machine.ts).
 */
export class VmBackend implements Backend {
  readonly name: VmDriver["name"];
  readonly capabilities;
  readonly defaultImage: string;
  private readonly agents: AgentPool;
  /** Live credential sync per running shed (seed: Credential Live Sync), started once credentials are in. */
  private readonly syncs = new Map<string, CredentialSync>();

  constructor(
    private readonly ownership: Ownership,
    private readonly opts: VmBackendOptions,
    private readonly driver: VmDriver,
  ) {
    this.name = driver.name;
    this.capabilities = driver.capabilities;
    this.defaultImage = opts.vm.image;
    this.agents = new AgentPool((name) => this.mustOwn(name).agent());
  }

  async ping(): Promise<void> {
    this.driver.checkHost();
  }

  async reattach(credentials: readonly CredentialConfig[]): Promise<string[]> {
    // The hypervisor (and its helpers) outlived the last server; the live credential sync did not.
    const lines: string[] = [];
    for (const shed of await this.list()) {
      if (shed.status !== "running") continue;
      try {
        const machine = this.mustOwn(shed.name);
        await this.startSync(shed.name, this.tarCredentials(machine, credentials));
      } catch (err) {
        lines.push(`${shed.name}: live credential sync not resumed: ${(err as Error).message}`);
      }
    }
    return lines;
  }

  async checkCreate(spec: CreateSpec): Promise<void> {
    this.driver.checkHost();
    this.driver.checkCreate(spec);
    const image = this.driver.image(spec.image);
    checkVmSize(this.name, spec.size, resolveVmSize(spec.size, this.opts.vm), image, this.driver.sizeLimits);
  }

  async prepareStorage(spec: CreateSpec): Promise<StorageResult> {
    if (readInstanceMeta(instanceDir(this.opts.dataDir, spec.name))) {
      throw new ShedError("SHED_ALREADY_EXISTS", `shed ${JSON.stringify(spec.name)} already has a VM instance`, {
        hint: "pick another name, or `shed delete` the existing one first",
      });
    }
    const image = this.driver.image(spec.image);
    const size = resolveVmSize(spec.size, this.opts.vm);
    await this.driver.create({
      dataDir: this.opts.dataDir,
      name: spec.name,
      serverId: this.ownership.serverId,
      image,
      createdAt: spec.createdAt,
      ...(spec.repoDisplay ? { display: spec.repoDisplay } : {}),
      ...(spec.localDir
        ? { localDir: { path: spec.localDir.path, dev: spec.localDir.dev, ino: spec.localDir.ino } }
        : {}),
      memoryMiB: size.memoryMiB,
      cpus: size.cpus,
      ...(size.diskBytes !== undefined ? { diskBytes: size.diskBytes } : {}),
    });
    return { created: true, reused: false, message: this.driver.storageMessage(image) };
  }

  async removeStorage(name: string): Promise<void> {
    await this.ownMachine(name)?.remove();
  }

  async boot(spec: CreateSpec): Promise<CreatedHandle> {
    const machine = this.mustOwn(spec.name);
    const handle = { id: `${spec.name}@${machine.meta().created_at}` };
    try {
      await this.bootAndWait(machine);
    } catch (err) {
      await this.removeCreated(handle).catch(() => {});
      throw err;
    }
    return handle;
  }

  async removeCreated(handle: CreatedHandle): Promise<void> {
    const at = handle.id.indexOf("@");
    const machine = this.ownMachine(handle.id.slice(0, at));
    // Only the VM this create made: its created-at is in the handle.
    if (machine && machine.meta().created_at === handle.id.slice(at + 1)) {
      await this.agents.drop(machine.name);
      await machine.kill();
    }
  }

  async mountLocalDir(spec: CreateSpec & { localDir: CheckedLocalDir }, warn: Warn): Promise<CellResult> {
    const machine = this.mustOwn(spec.name);
    const guest = this.guest(spec.name);
    const done = await this.mountWorkspace(guest, machine);
    // Credentials reach a VM as copies made for user shed (none is mounted live with the owner's uid).
    const owner = await matchOwner(guest, spec.localDir, [], warn);
    return { outcome: "done", message: `${done}; ${owner}` };
  }

  async setUpCredentials(spec: CreateSpec, _user: GuestUser, warn: Warn): Promise<CellResult> {
    return this.credentialsIn(spec.name, spec.credentials, warn);
  }

  async start(name: string): Promise<void> {
    await this.bootAndWait(this.mustOwn(name));
  }

  async remountLocalDir(shed: Shed): Promise<CellResult> {
    // A mount does not outlive the VM's reboot; user shed's uid (set at create) is on the VM's disk.
    const machine = this.mustOwn(shed.name);
    const done = await this.mountWorkspace(this.guest(shed.name), machine);
    return { outcome: "done", message: `${done} mounted again` };
  }

  async refreshCredentials(
    shed: Shed,
    credentials: readonly CredentialConfig[],
    _user: GuestUser,
    warn: Warn,
  ): Promise<CellResult> {
    // The guest's disk keeps the last copy; the host's may have changed while the VM was stopped.
    return this.credentialsIn(shed.name, credentials, warn);
  }

  async drain(name: string, timeoutMs: number): Promise<CellResult> {
    // The last changes made in the VM have been synced by now; nothing new starts.
    await this.stopSync(name);
    const client = await this.agents.client(name);
    const still = await client.drain(timeoutMs);
    return {
      outcome: "done",
      message:
        still === 0
          ? "no operation left in flight"
          : `${still} operation${still === 1 ? "" : "s"} still running after ${timeoutMs / 1000}s; the power goes anyway`,
    };
  }

  async stop(name: string, timeoutMs: number): Promise<CellResult> {
    const machine = this.mustOwn(name);
    await this.stopSync(name);
    await this.agents.drop(name);
    const how = await machine.stop(timeoutMs);
    return { outcome: "done", message: this.driver.stopMessage(how, timeoutMs) };
  }

  async remove(name: string, opts: RemoveOptions): Promise<CellResult> {
    const machine = this.ownMachine(name);
    if (!machine) return { outcome: "done", message: "nothing left to remove" };
    await this.stopSync(name);
    await this.agents.drop(name);
    await machine.kill();
    let kept: string | undefined;
    // A --local-dir shed's workspace is the user's directory, which only the file-sharing helper (gone
    // with the VM by now) ever touched: the instance directory holds nothing of it, so there is no disk
    // worth keeping.
    const localDir = machine.meta().local_dir;
    if (opts.keepVolume && !localDir) {
      // The workspace lives in the VM's disk: that disk is what is kept, outside the instance directory.
      const dir = join(vmRootDir(this.opts.dataDir), "kept");
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const disk = machine.workspaceDisk();
      kept = join(dir, `${name}-${machine.meta().created_at.replace(/[^0-9]/g, "")}.${disk.suffix}`);
      renameSync(disk.path, kept);
    }
    await machine.remove();
    return {
      outcome: "done",
      message: kept
        ? `VM removed; its disk (the workspace) kept as ${kept}`
        : localDir
          ? `VM and its instance directory removed; ${localDir.path} left as it was`
          : "VM and its instance directory removed",
    };
  }

  async removeLeftovers(name: string, createdAt: string): Promise<void> {
    const dir = instanceDir(this.opts.dataDir, name);
    if (existsSync(dir) && !readInstanceMeta(dir)) {
      // Killed inside storage, before the metadata (written last) existed: no VM was ever started from
      // it and no other create can have made it, but nothing else would find it again.
      removeInstanceDir(this.opts.dataDir, name);
      return;
    }
    const machine = this.ownMachine(name);
    if (machine && machine.meta().created_at === createdAt) {
      // Re-attach (before recovery) may have resumed a sync on this half-made VM's agent.
      await this.stopSync(name);
      await this.agents.drop(name);
      await machine.remove();
    }
  }

  async get(name: string): Promise<Shed | undefined> {
    const machine = this.ownMachine(name);
    if (!machine) return undefined;
    // Reconciled with the live process: a hypervisor that died is stopped, whatever the record said.
    const { running } = await machine.status();
    return instanceShed(machine.meta(), running, machine.dir);
  }

  async list(): Promise<Shed[]> {
    const all = await Promise.all(listInstanceNames(this.opts.dataDir).map((n) => this.get(n).catch(() => undefined)));
    return all.filter((s): s is Shed => s !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  }

  guest(name: string): GuestExec {
    return this.agents.guest(name);
  }

  /**
   * Puts every credential in: the ones the driver shares itself (VZ's directories through
   * virtio-fs) are mounted, the rest copied in as tar and then kept in step both ways while the VM
   * runs.
   */
  private async credentialsIn(name: string, credentials: readonly CredentialConfig[], warn: Warn): Promise<CellResult> {
    await this.stopSync(name);
    const machine = this.mustOwn(name);
    const split = this.driver.splitCredentials?.(machine, credentials);
    const mounted = split ? await split.mount(this.guest(name), warn) : undefined;
    const tar = split ? split.rest : [...credentials];
    const present = tar.filter((c) => existsSync(c.source));
    const copied = await copyCredentialsIn(this.guest(name), tar, warn);
    const parts = [mounted, copied].filter((p): p is string => Boolean(p));
    if (present.length > 0) {
      await this.startSync(name, present);
      parts.push(`live sync of ${present.length} both ways (readonly: to the VM only)`);
    }
    return { outcome: "done", message: parts.join("; ") };
  }

  /** The credentials that go in as tar (and are synced): all of them unless the driver shares some. */
  private tarCredentials(machine: VmMachine, credentials: readonly CredentialConfig[]): CredentialConfig[] {
    const rest = this.driver.splitCredentials?.(machine, credentials).rest ?? credentials;
    return rest.filter((c) => existsSync(c.source));
  }

  private async startSync(name: string, present: readonly CredentialConfig[]): Promise<void> {
    if (present.length === 0) return;
    await this.stopSync(name);
    const agent = await this.agents.client(name);
    // Later failures of the sync are the server's warnings: the step that started it has ended by then.
    const warn = (message: string, hint?: string) =>
      console.warn(`shed-server: ${name}: credential sync: ${message}${hint ? ` (${hint})` : ""}`);
    const sync = await CredentialSync.start({ agent, credentials: present, warn });
    this.syncs.set(name, sync);
    // The sync ends with its agent connection. While the VM still runs (the connection dropped, not a
    // stop: stopSync takes the sync out first), it starts again on a fresh one.
    void agent.closed.then(async () => {
      // A second's pause, so an agent that keeps dropping connections is not redialled in a tight loop.
      await new Promise((r) => setTimeout(r, 1000));
      if (this.syncs.get(name) !== sync || !this.ownMachine(name)?.isRunning()) return;
      await this.startSync(name, present).catch((err) => warn(`not restarted: ${(err as Error).message}`));
    });
  }

  private async stopSync(name: string): Promise<void> {
    const sync = this.syncs.get(name);
    this.syncs.delete(name);
    await sync?.stop();
  }

  /** Boots the VM, waits for a healthy agent within start_timeout, and prepares Shed's folders. */
  private async bootAndWait(machine: VmMachine): Promise<void> {
    await machine.start();
    await machine.waitForAgent(this.opts.vm.startTimeoutMs, async () => {
      await this.agents.drop(machine.name);
      await (await this.agents.client(machine.name)).health();
      return true;
    });
    const prepared = await prepareGuest(this.guest(machine.name));
    if (!prepared.ok) {
      throw new ShedError("BACKEND_ERROR", `the VM booted but cannot run commands: ${prepared.reason}`, {
        hint: "rebuild the VM image with `npm run build-vm-image` (it needs bash, git and a user named shed)",
      });
    }
    if (machine.meta().disk_bytes !== undefined) await growRootFilesystem(this.guest(machine.name), machine.name);
  }

  private async mountWorkspace(guest: GuestExec, machine: VmMachine): Promise<string> {
    const dir = this.localDirOf(machine);
    if (!this.driver.mountLocalDir) {
      throw new ShedError("LOCAL_DIR_REFUSED", `the ${this.name} backend cannot share a local directory`, {
        hint: "create the shed without --local-dir",
      });
    }
    return this.driver.mountLocalDir(guest, machine, dir);
  }

  private localDirOf(machine: VmMachine): InstanceLocalDir {
    const dir = machine.meta().local_dir;
    if (!dir) {
      throw new ShedError("BACKEND_ERROR", `shed ${JSON.stringify(machine.name)} was not created with --local-dir`, {
        hint: "its VM metadata records no local dir; `shed delete` it and create it again with --local-dir",
      });
    }
    return dir;
  }

  /** The shed's machine if this server made it with this backend; another server's (a copied data_dir) is not touched. */
  private ownMachine(name: string): VmMachine | undefined {
    const machine = this.driver.open(this.opts.dataDir, name);
    if (!machine || machine.meta().server_id !== this.ownership.serverId) return undefined;
    return machine;
  }

  private mustOwn(name: string): VmMachine {
    const machine = this.ownMachine(name);
    if (!machine) {
      throw new ShedError("SHED_NOT_FOUND", `shed ${JSON.stringify(name)} has no VM instance on this server`, {
        hint: "`shed list` shows the sheds this server has",
      });
    }
    return machine;
  }
}
