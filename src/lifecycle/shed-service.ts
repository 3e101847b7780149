import type { Backend } from "../backends/backend.js";
import type { DevcontainerPlan } from "../config/devcontainer/map.js";
import type { HookName } from "../config/provision-file.js";
import type { ServerConfig } from "../config/server-config.js";
import { tryParseDuration } from "../core/duration.js";
import { ShedError, toShedError } from "../core/errors.js";
import type { LifecycleSink } from "../core/events.js";
import { validateShedName } from "../core/names.js";
import { type BackendName, type Shed, shedBaseEnv } from "../core/types.js";
import type { GuestExec } from "../guest/exec.js";
import type { CreateShedRequest } from "../protocol/api-types.js";
import { prepareCreate } from "./create-request.js";
import { CREATE_STEPS } from "./create-steps.js";
import { type DeleteContext, REMOVE_STEP } from "./delete-steps.js";
import { shedCommandUser } from "./devcontainer-user.js";
import { emptyMeta, type MetaStore, type OperationRecord, type ShedMeta } from "./meta-store.js";
import { NameLock } from "./name-lock.js";
import { HOOK_STEPS, PROVISION_STEPS, type ProvisionState, READ_PROVISION_STEP } from "./provision-steps.js";
import { type Completion, clearedBy, interruptedStatus } from "./recovery.js";
import { type RunContext, START_STEPS, STOP_STEPS } from "./run-steps.js";
import { settleOperation } from "./settle-operation.js";
import { runSteps, type Step, StepFailure, type StepTracking } from "./steps.js";

export interface ServiceDeps {
  config: ServerConfig;
  backends: ReadonlyMap<BackendName, Backend>;
  meta: MetaStore;
  /** Extra environment for every shed (the server's env_file). */
  env: Record<string, string>;
  /** Resolves an uploaded bundle id to its file on this server. */
  bundlePath(id: string): string | undefined;
  /** Why this host could not run a backend the config leaves out (what is missing), if anything. */
  hostProblem?(backend: BackendName): ShedError | undefined;
}

/**
 * create, start, stop and delete as ordered step lists, serialized per name.
 * The server's HTTP and SSH front ends call only this.
 */
export class ShedService {
  private readonly locks = new NameLock();

  constructor(private readonly deps: ServiceDeps) {}

  async list(): Promise<Shed[]> {
    const all: Shed[] = [];
    for (const backend of this.deps.backends.values()) all.push(...(await backend.list()));
    return all.map((s) => this.withMeta(s)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<Shed> {
    validateShedName(name);
    const found = await this.find(name);
    if (!found) throw notFound(name);
    return this.withMeta(found.shed);
  }

  async create(req: CreateShedRequest, emit: LifecycleSink): Promise<Shed> {
    const prepared = await prepareCreate(req, this.deps, (backend, name, noProvision) =>
      this.provisionState(backend, name, noProvision),
    );
    return this.locks.run(prepared.spec.name, async () => {
      const existing = await this.find(prepared.spec.name);
      if (existing?.shed.owner === "unowned") throw notOwned(existing.shed);
      if (existing) {
        throw new ShedError("SHED_ALREADY_EXISTS", `shed ${JSON.stringify(prepared.spec.name)} already exists`, {
          hint: "pick another name, or `shed delete` the existing one first",
        });
      }
      const deadline = req.timeout ? Date.now() + (tryParseDuration(req.timeout) ?? 0) : undefined;
      // What a create or delete of this name that the server was killed in left behind goes first, and is said.
      const settled = await settleOperation(prepared.spec.name, this.deps);
      if (settled) emit({ type: "warning", step: "storage", message: settled });
      // A record left by a shed removed outside Shed must not leak into the new one. It is emptied, not
      // removed: it is what adopts a workspace volume kept by an older Shed without server ids.
      const adopting = this.deps.meta.has(prepared.spec.name);
      if (adopting) {
        this.deps.meta.update(prepared.spec.name, (m) => {
          Object.assign(m, emptyMeta());
          delete m.interrupted;
        });
      }
      const track = this.tracking(prepared.spec.name, {
        op: "create",
        ...(adopting ? {} : { fresh_record: true }),
        backend: prepared.backend.name,
        created_at: prepared.spec.createdAt,
        ...(req.repo_bundle ? { bundle: req.repo_bundle } : {}),
      });
      try {
        const { warnings } = await runSteps(CREATE_STEPS, prepared, emit, deadline, track);
        this.deps.meta.update(prepared.spec.name, (m) => {
          m.warnings = warnings;
          delete m.operation;
        });
      } catch (err) {
        this.deps.meta.remove(prepared.spec.name);
        if (err instanceof StepFailure) throw err.error;
        throw err;
      }
      return this.get(prepared.spec.name);
    });
  }

  async start(name: string, emit: LifecycleSink): Promise<Shed> {
    validateShedName(name);
    return this.locks.run(name, async () => {
      const { shed, backend } = await this.mustFind(name);
      if (shed.status === "running") {
        throw new ShedError("SHED_ALREADY_RUNNING", `shed ${JSON.stringify(name)} is already running`, {
          hint: `connect with \`shed console ${name}\`, or \`shed stop ${name}\` first to restart it`,
        });
      }
      await this.runLifecycle("start", START_STEPS, this.runContext(backend, shed), emit);
      return this.get(name);
    });
  }

  async stop(name: string, emit: LifecycleSink): Promise<Shed> {
    validateShedName(name);
    return this.locks.run(name, async () => {
      const { shed, backend } = await this.mustFind(name);
      if (shed.status !== "running") {
        throw new ShedError("SHED_ALREADY_STOPPED", `shed ${JSON.stringify(name)} is already stopped`, {
          hint: `\`shed start ${name}\` starts it; \`shed delete ${name}\` removes it`,
        });
      }
      await this.runLifecycle("stop", STOP_STEPS, this.runContext(backend, shed), emit);
      return this.get(name);
    });
  }

  /** Seed: delete calls stop (shutdown hook included), then removes all resources. */
  async delete(name: string, opts: { keepVolume: boolean }, emit: LifecycleSink): Promise<void> {
    validateShedName(name);
    await this.locks.run(name, async () => {
      // No container, but a create or delete the server was killed in left something: finish that.
      if (!(await this.find(name)) && this.deps.meta.read(name).operation) {
        const settled = await settleOperation(name, this.deps);
        if (settled) {
          emit({ type: "warning", step: "remove", message: settled });
          return;
        }
      }
      const { shed, backend } = await this.mustFind(name);
      const ctx: DeleteContext = { ...this.runContext(backend, shed), keepVolume: opts.keepVolume };
      const steps: Step<DeleteContext>[] = shed.status === "running" ? [...STOP_STEPS, REMOVE_STEP] : [REMOVE_STEP];
      const track = this.tracking(name, {
        op: "delete",
        backend: backend.name,
        keep_volume: opts.keepVolume,
        ...(shed.local_dir ? { local_dir: true } : {}),
      });
      try {
        await runSteps(steps, ctx, emit, undefined, track);
      } catch (err) {
        this.endOperation(name);
        if (err instanceof StepFailure) throw err.error;
        throw err;
      }
      this.deps.meta.remove(name);
    });
  }

  /** For SSH: a stopped shed is started on connect. */
  async ensureRunning(name: string, emit: LifecycleSink): Promise<{ shed: Shed; guest: GuestExec }> {
    validateShedName(name);
    const { shed, backend } = await this.mustFind(name);
    if (shed.status !== "running") {
      try {
        await this.start(name, emit);
      } catch (err) {
        if (!(err instanceof ShedError && err.code === "SHED_ALREADY_RUNNING")) throw err;
      }
    }
    return { shed, guest: backend.guest(name) };
  }

  /**
   * The guest of a shed that runs now, never starting it: for SSH port forwards
   * (tunnels), which must not bring back a shed someone stopped.
   */
  async runningGuest(name: string): Promise<GuestExec> {
    validateShedName(name);
    const { shed, backend } = await this.mustFind(name);
    if (shed.status !== "running") {
      throw new ShedError("SHED_ALREADY_STOPPED", `shed ${JSON.stringify(name)} is ${shed.status}`, {
        hint: `port forwards do not start a shed: shed start ${name} (or shed console ${name})`,
      });
    }
    return backend.guest(name);
  }

  /** devcontainer.json as read at create (issue 13), for postAttachCommand. */
  devcontainerPlan(name: string): DevcontainerPlan | undefined {
    return this.deps.meta.read(name).devcontainer;
  }

  /** The guest user the shed's sessions run as (exec, console, attach, SSH): devcontainer.json's remoteUser, else shed. */
  commandUser(name: string): string {
    return shedCommandUser(this.deps.meta.read(name).devcontainer);
  }

  /**
   * The environment of every process Shed starts in a shed (exec, SSH, hooks):
   * the server's env_file, the provision file's env, SHED_*, and a PATH with
   * the entries the install hook added in front of the image's own.
   */
  guestEnv(shed: Shed): Record<string, string> {
    const { provision } = this.deps.meta.read(shed.name);
    const env: Record<string, string> = { ...this.deps.env, ...provision.env, ...shedBaseEnv(shed.name) };
    if (provision.path_added.length > 0 && provision.path_image.length > 0) {
      env.PATH = [...new Set([...provision.path_added, ...provision.path_image])].join(":");
    }
    return env;
  }

  /** Re-runs hooks on demand: one hook, or install + PATH capture + startup (install ignores the state file). */
  async provision(name: string, hook: HookName | undefined, emit: LifecycleSink): Promise<Shed> {
    validateShedName(name);
    return this.locks.run(name, async () => {
      const { shed, backend } = await this.mustFind(name);
      if (shed.status !== "running") {
        throw new ShedError("SHED_ALREADY_STOPPED", `shed ${JSON.stringify(name)} is stopped`, {
          hint: `start it first: shed start ${name}`,
        });
      }
      const ctx = this.runContext(backend, shed);
      ctx.prov.forceInstall = true;
      const steps = hook ? [READ_PROVISION_STEP, HOOK_STEPS[hook]] : PROVISION_STEPS;
      const done: Completion = !hook ? "provision" : hook === "startup" ? "provision_startup" : "provision_hook";
      await this.runLifecycle("provision", steps, ctx, emit, done);
      return this.get(name);
    });
  }

  /** Hook runs and provision warnings, for status. */
  provisionStatus(name: string): ShedMeta {
    return this.deps.meta.read(name);
  }

  private runContext(backend: Backend, shed: Shed): RunContext {
    return { backend, shed, config: this.deps.config, prov: this.provisionState(backend, shed.name, false) };
  }

  private provisionState(backend: Backend, name: string, noProvision: boolean): ProvisionState {
    return {
      name,
      guest: backend.guest(name),
      meta: this.deps.meta,
      baseEnv: { ...this.deps.env, ...shedBaseEnv(name) },
      noProvision,
      stopTimeoutMs: this.deps.config.stopTimeoutMs,
      hookLogMaxBytes: this.deps.config.hookLogMaxBytes,
    };
  }

  private async runLifecycle(
    op: "start" | "stop" | "provision",
    steps: typeof START_STEPS,
    ctx: RunContext,
    emit: LifecycleSink,
    done: Completion = op === "provision" ? "provision" : op,
  ): Promise<void> {
    const { name } = ctx.shed;
    try {
      await runSteps(steps, ctx, emit, undefined, this.tracking(name, { op, backend: ctx.backend.name }));
    } catch (err) {
      this.endOperation(name);
      if (err instanceof StepFailure) throw err.error;
      throw err;
    }
    this.deps.meta.update(name, (m) => {
      delete m.operation;
      if (m.interrupted && clearedBy(m.interrupted, done)) delete m.interrupted;
    });
  }

  /** Records the operation and its current step before each step (what recovery reads after a crash). */
  private tracking(name: string, op: Omit<OperationRecord, "step" | "started_at">): StepTracking {
    const started_at = new Date().toISOString();
    return {
      op: op.op,
      onStep: (step) =>
        this.deps.meta.update(name, (m) => {
          m.operation = { ...op, step, started_at };
        }),
    };
  }

  /** An operation that ended with an error (reported to its caller) is no longer in progress. */
  private endOperation(name: string): void {
    if (this.deps.meta.read(name).operation) {
      this.deps.meta.update(name, (m) => {
        delete m.operation;
      });
    }
  }

  /**
   * At server start, before any request: every operation the previous server
   * was killed in is finished, undone or left marked interrupted (recovery.ts).
   * One line per shed says which; a failure is said too and tried again at the
   * next start, or by a create or delete of that name.
   */
  async recover(): Promise<string[]> {
    const lines: string[] = [];
    for (const name of this.deps.meta.names()) {
      const op = this.deps.meta.read(name).operation;
      if (!op) continue;
      try {
        lines.push(
          (await settleOperation(name, this.deps)) ??
            `${name}: ${op.op} interrupted at step ${op.step}; shown by shed list`,
        );
      } catch (err) {
        lines.push(
          `${name}: ${op.op} interrupted at step ${op.step}; finishing it failed: ${toShedError(err).message} (tried again at the next start, or by shed create/delete ${name})`,
        );
      }
    }
    return lines;
  }

  private async find(name: string): Promise<{ shed: Shed; backend: Backend } | undefined> {
    for (const backend of this.deps.backends.values()) {
      const shed = await backend.get(name);
      if (shed) return { shed, backend };
    }
    return undefined;
  }

  /** A shed this server may act on: its own (another server's is not found; an unowned one is refused). */
  private async mustFind(name: string): Promise<{ shed: Shed; backend: Backend }> {
    const found = await this.find(name);
    if (!found) throw notFound(name);
    if (found.shed.owner === "unowned") throw notOwned(found.shed);
    return found;
  }

  private withMeta(shed: Shed): Shed {
    const meta = this.deps.meta.read(shed.name);
    return {
      ...shed,
      ...(meta.interrupted
        ? { interrupted: interruptedStatus(meta.interrupted, shed, this.deps.meta.kept(shed.name) !== undefined) }
        : {}),
      warnings: meta.warnings,
      provision: {
        file_found: meta.provision.found,
        warnings: meta.provision.warnings,
        env: Object.keys(meta.provision.env),
        path_added: meta.provision.path_added,
        hooks: meta.hooks,
        ...(meta.provision.source ? { source: meta.provision.source } : {}),
        ...(meta.devcontainer?.forwardPorts.length ? { forward_ports: meta.devcontainer.forwardPorts } : {}),
        ...(meta.devcontainer?.hookUser ? { user: meta.devcontainer.hookUser } : {}),
      },
    };
  }
}

function notOwned(shed: Shed): ShedError {
  return new ShedError(
    "SHED_NOT_OWNED",
    `shed ${JSON.stringify(shed.name)} was made by another shed-server or an older Shed version without a server id, and this server holds no record of it, so it does not start, stop, delete or run commands in it`,
    { ...(shed.owner_hint ? { hint: shed.owner_hint } : {}), details: { owner: shed.owner } },
  );
}

function notFound(name: string): ShedError {
  return new ShedError("SHED_NOT_FOUND", `no shed named ${JSON.stringify(name)}`, {
    hint: "`shed list` shows the sheds on this server",
  });
}
