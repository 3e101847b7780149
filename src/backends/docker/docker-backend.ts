import Docker from "dockerode";
import type { CredentialConfig } from "../../config/server-config.js";
import { ShedError } from "../../core/errors.js";
import type { Warn } from "../../core/events.js";
import type { Shed, ShedStatus } from "../../core/types.js";
import type { GuestExec } from "../../guest/exec.js";
import type { GuestUser } from "../../guest/guest-user.js";
import type {
  Backend,
  CellResult,
  CheckedLocalDir,
  CreatedHandle,
  CreateSpec,
  ImageBuildRequest,
  Ownership,
  RemoveOptions,
  StorageResult,
} from "../backend.js";
import { CAPABILITIES } from "../capabilities.js";
import { containerSpec } from "./container-spec.js";
import { planCredentials, refreshCredentials, setUpCredentials } from "./credentials.js";
import { backendError, dockerStatus, engineMessage } from "./docker-errors.js";
import { DockerGuestExec } from "./docker-exec.js";
import { buildDevcontainerImage } from "./image-build.js";
import { pullIfMissing } from "./image-pull.js";
import { verifyLocalDirMount } from "./local-dir-mount.js";
import { containerName, LABEL, volumeName } from "./naming.js";
import { notOwnedError, type Owner, ownerOf } from "./ownership.js";
import { waitForExec } from "./readiness.js";
import { visibleShed } from "./shed-view.js";
import { checkDockerSize } from "./size.js";

/**
 * The Docker column of the seed's tables: a named volume (or a bind mount of
 * --local-dir) at /workspace, a container `shed-<name>` labelled so that Docker
 * is the source of truth, credentials bind-mounted at creation (directly, or
 * read-only at a staging path for a copy owned by user shed, credentials.ts).
 * Bind mounts persist, so start re-mounts nothing; there is no agent to drain.
 *
 * Every object it makes carries this server's id, and it acts only on objects
 * that are this server's (ownership.ts): by the id it inspected, never by a
 * name that could meanwhile point at someone else's container.
 */
export class DockerBackend implements Backend {
  readonly name = "docker" as const;
  readonly capabilities = CAPABILITIES.docker;
  readonly docker: Docker;

  constructor(
    private readonly ownership: Ownership,
    readonly defaultImage: string,
    docker?: Docker,
  ) {
    this.docker = docker ?? new Docker();
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw backendError("docker", err);
    }
  }

  buildImage(req: ImageBuildRequest, onOutput: (text: string) => void): Promise<{ image: string; cached: boolean }> {
    return buildDevcontainerImage(this.docker, req, onOutput);
  }

  pullImage(image: string, onOutput: (text: string) => void): Promise<{ pulled: boolean }> {
    return pullIfMissing(this.docker, image, onOutput);
  }

  async reattach(): Promise<string[]> {
    // Containers and bind mounts need nobody to hold them.
    return [];
  }

  async checkCreate(spec: CreateSpec): Promise<void> {
    // The rest of what Docker cannot do is found when the container is made (an image that is not there, say).
    checkDockerSize(spec.size);
  }

  async prepareStorage(spec: CreateSpec): Promise<StorageResult> {
    if (spec.localDir) return { created: false, reused: false, message: `bind mount of ${spec.localDir.path}` };
    const name = volumeName(spec.name);
    const existing = await this.inspectVolume(name);
    if (existing) {
      // A workspace kept by this server's `delete --keep-volume` comes back; anyone else's is refused, never reused.
      const owner = ownerOf(existing.Labels, spec.name, this.ownership);
      if (owner.kind !== "this_server") throw notOwnedError(`volume ${name}`, spec.name, owner);
      return { created: false, reused: true, message: `reusing workspace volume ${name}` };
    }
    let made: Docker.VolumeInspectInfo;
    try {
      made = await (
        await this.docker.createVolume({
          Name: name,
          Labels: { ...this.ownLabels(spec.name), [LABEL.createdAt]: spec.createdAt },
        })
      ).inspect();
    } catch (err) {
      throw backendError(`create volume ${name}`, err);
    }
    // Creating a volume whose name exists returns the existing one: only our labels prove this call made it.
    const labels = made.Labels ?? {};
    if (labels[LABEL.serverId] !== this.ownership.serverId || labels[LABEL.createdAt] !== spec.createdAt) {
      const owner = ownerOf(labels, spec.name, this.ownership);
      if (owner.kind !== "this_server") throw notOwnedError(`volume ${name}`, spec.name, owner);
      return { created: false, reused: true, message: `reusing workspace volume ${name}` };
    }
    return { created: true, reused: false, message: "workspace volume created" };
  }

  async removeStorage(name: string): Promise<void> {
    const volume = await this.inspectVolume(volumeName(name));
    // Volumes have no id but their name: what is removed is what was just seen to be this server's.
    if (!volume || ownerOf(volume.Labels, name, this.ownership).kind !== "this_server") return;
    try {
      await this.docker.getVolume(volumeName(name)).remove();
    } catch (err) {
      if (dockerStatus(err) !== 404) throw backendError(`remove volume ${volumeName(name)}`, err);
    }
  }

  async boot(spec: CreateSpec, onOutput?: (text: string) => void): Promise<CreatedHandle> {
    const handle = await this.createAndStart(spec);
    try {
      // An image lacking user shed is completed here, once, in the container's own layer (complete-image.ts).
      const completed = await waitForExec(
        this.guest(spec.name),
        async () => (await this.get(spec.name))?.status === "running",
        {
          workspaceIsVolume: !spec.localDir,
          liveCredentials: planCredentials(spec.credentials, spec).some((c) => c.mode === "direct"),
          ...(onOutput ? { onOutput } : {}),
        },
      );
      return completed ? { ...handle, notes: completed.notes, warnings: completed.warnings } : handle;
    } catch (err) {
      await this.removeCreated(handle).catch(() => {});
      throw err;
    }
  }

  private async createAndStart(spec: CreateSpec): Promise<CreatedHandle> {
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(containerSpec(spec, this.ownLabels(spec.name)));
    } catch (err) {
      if (dockerStatus(err) === 404 && /image/i.test(engineMessage(err))) {
        throw new ShedError("IMAGE_NOT_FOUND", `image ${JSON.stringify(spec.image)} is not on this server`, {
          hint:
            spec.image === "shed-base:latest"
              ? "build it with `npm run build-image` on the server"
              : `pull or build it on the server (docker pull ${spec.image}), or pick another with --image`,
          cause: err,
        });
      }
      if (dockerStatus(err) === 409) throw await this.nameTaken(spec.name, err);
      throw backendError(`create container ${containerName(spec.name)}`, err);
    }
    const handle: CreatedHandle = { id: container.id };
    try {
      await container.start();
    } catch (err) {
      // Nothing is returned when this throws, so what was made here is removed here (by its id).
      await this.removeCreated(handle).catch(() => {});
      throw backendError(`start container ${containerName(spec.name)}`, err);
    }
    return handle;
  }

  async removeCreated(handle: CreatedHandle): Promise<void> {
    try {
      // v: the anonymous hook-log volume goes with the container; named volumes (the workspace) never do.
      await this.docker.getContainer(handle.id).remove({ force: true, v: true });
    } catch (err) {
      if (dockerStatus(err) !== 404) throw backendError(`remove container ${handle.id.slice(0, 12)}`, err);
    }
  }

  mountLocalDir(spec: CreateSpec & { localDir: CheckedLocalDir }, warn: Warn): Promise<CellResult> {
    return verifyLocalDirMount(this.guest(spec.name), spec, warn);
  }

  async setUpCredentials(spec: CreateSpec, user: GuestUser, warn: Warn): Promise<CellResult> {
    // Direct mounts are in place since the container was made; staged ones are copied now.
    const n = spec.credentials.length;
    const summary = await setUpCredentials(this.guest(spec.name), planCredentials(spec.credentials, spec), user, warn);
    return { outcome: "done", message: `${n} credential${n === 1 ? "" : "s"}: ${summary}` };
  }

  async remountLocalDir(_shed: Shed): Promise<CellResult> {
    return { outcome: "done", message: "bind mount persists across restarts" };
  }

  async refreshCredentials(
    shed: Shed,
    credentials: readonly CredentialConfig[],
    user: GuestUser,
    warn: Warn,
  ): Promise<CellResult> {
    // Direct bind mounts persist; copies (source not owned by user shed, or with exclude) are made again.
    return { outcome: "done", message: await refreshCredentials(this.guest(shed.name), credentials, user, warn) };
  }

  async drain(_name: string, _timeoutMs: number): Promise<CellResult> {
    return { outcome: "skipped", reason: "no agent: commands run through docker exec" };
  }

  async start(name: string): Promise<void> {
    const id = await this.ownContainerId(name);
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (dockerStatus(err) === 304) return; // already running
      throw this.mapMissing(name, err, "start");
    }
  }

  async stop(name: string, timeoutMs: number): Promise<CellResult> {
    const id = await this.ownContainerId(name);
    const seconds = Math.max(0, Math.ceil(timeoutMs / 1000));
    const started = Date.now();
    try {
      await this.docker.getContainer(id).stop({ t: seconds });
    } catch (err) {
      if (dockerStatus(err) !== 304) throw this.mapMissing(name, err, "stop");
      return { outcome: "done", message: "it was already stopped" };
    }
    // How it stopped, not how long it took (the step's own time is shown beside it). Docker sends SIGKILL
    // only once the timeout has passed: a stop that returned sooner ended on SIGTERM, with no look needed.
    const killed = Date.now() - started >= seconds * 1000 && (await this.exitCode(id)) === 137; // 128 + SIGKILL
    return {
      outcome: "done",
      message: killed
        ? `it did not exit within stop_timeout (${seconds}s) of SIGTERM: killed with SIGKILL`
        : "it exited on SIGTERM",
    };
  }

  /** A stopped container's exit code; undefined when it cannot be read (the stop itself succeeded). */
  private async exitCode(id: string): Promise<number | undefined> {
    try {
      return (await this.docker.getContainer(id).inspect()).State.ExitCode;
    } catch {
      return undefined;
    }
  }

  async remove(name: string, opts: RemoveOptions): Promise<CellResult> {
    const info = await this.inspectContainer(name);
    let localDir = false;
    if (info) {
      const owner = ownerOf(info.Config.Labels, name, this.ownership);
      if (owner.kind !== "this_server") throw notOwnedError(`container ${containerName(name)}`, name, owner);
      // A --local-dir shed never mounted the volume of its name: one there was kept by an earlier shed.
      localDir = info.Config.Labels?.[LABEL.localDir] !== undefined;
      // By the id just inspected: a container put under this name since then is not hit.
      await this.removeCreated({ id: info.Id });
    }
    const keep = opts.keepVolume || localDir;
    if (!keep) await this.removeStorage(name);
    return { outcome: "done", message: keep ? "container removed; workspace kept" : "container and workspace removed" };
  }

  async removeLeftovers(name: string, createdAt: string): Promise<void> {
    // Only what carries this server's id and this create's created-at was made by it (labels never change).
    const made = (labels: Record<string, string> | undefined) =>
      labels?.[LABEL.serverId] === this.ownership.serverId &&
      labels[LABEL.name] === name &&
      labels[LABEL.createdAt] === createdAt;
    const info = await this.inspectContainer(name);
    if (info && made(info.Config.Labels)) await this.removeCreated({ id: info.Id });
    const volume = await this.inspectVolume(volumeName(name));
    if (volume && made(volume.Labels)) {
      try {
        await this.docker.getVolume(volumeName(name)).remove();
      } catch (err) {
        if (dockerStatus(err) !== 404) throw backendError(`remove volume ${volumeName(name)}`, err);
      }
    }
  }

  async get(name: string): Promise<Shed | undefined> {
    const info = await this.inspectContainer(name);
    if (!info) return undefined;
    const labels = info.Config.Labels ?? {};
    return this.visible(labels, name, info.State.Running ? "running" : "stopped");
  }

  async list(): Promise<Shed[]> {
    let containers: Docker.ContainerInfo[];
    try {
      containers = await this.docker.listContainers({
        all: true,
        filters: { label: [`${LABEL.managed}=true`, `${LABEL.backend}=docker`] },
      });
    } catch (err) {
      throw backendError("list containers", err);
    }
    // Another server's sheds are not listed at all; unadopted old ones are, as unowned.
    return containers
      .flatMap((c) => {
        const name = c.Labels[LABEL.name];
        const shed = name && this.visible(c.Labels, name, c.State === "running" ? "running" : "stopped");
        return shed ? [shed] : [];
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  guest(name: string): GuestExec {
    return new DockerGuestExec(this.docker, containerName(name));
  }

  /** The shed this server may show: its own, or an unowned old one; undefined for anyone else's. */
  private visible(labels: Record<string, string>, name: string, status: ShedStatus): Shed | undefined {
    return visibleShed(labels, name, status, this.ownership);
  }

  /** The labels that make an object this server's shed object. */
  private ownLabels(name: string): Record<string, string> {
    return { [LABEL.managed]: "true", [LABEL.name]: name, [LABEL.serverId]: this.ownership.serverId };
  }

  private async inspectContainer(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(containerName(name)).inspect();
    } catch (err) {
      if (dockerStatus(err) === 404) return undefined;
      throw backendError(`inspect ${containerName(name)}`, err);
    }
  }

  private async inspectVolume(name: string): Promise<Docker.VolumeInspectInfo | undefined> {
    try {
      return await this.docker.getVolume(name).inspect();
    } catch (err) {
      if (dockerStatus(err) === 404) return undefined;
      throw backendError(`inspect volume ${name}`, err);
    }
  }

  /** The id of the shed's container if it is this server's; start and stop act on that id only. */
  private async ownContainerId(name: string): Promise<string> {
    const info = await this.inspectContainer(name);
    if (!info) throw containerGone(name);
    const owner = ownerOf(info.Config.Labels, name, this.ownership);
    if (owner.kind !== "this_server") throw notOwnedError(`container ${containerName(name)}`, name, owner);
    return info.Id;
  }

  /** Why the container name is taken, naming whose the container is; nothing of theirs is touched. */
  private async nameTaken(name: string, cause: unknown): Promise<ShedError> {
    const info = await this.inspectContainer(name).catch(() => undefined);
    const owner: Owner = info ? ownerOf(info.Config.Labels, name, this.ownership) : { kind: "not_shed" };
    if (owner.kind === "this_server") {
      return new ShedError("SHED_ALREADY_EXISTS", `shed ${JSON.stringify(name)} already exists`, {
        hint: "pick another name, or `shed delete` the existing one first",
        cause,
      });
    }
    return notOwnedError(`the name ${JSON.stringify(name)} is taken: container ${containerName(name)}`, name, owner);
  }

  private mapMissing(name: string, err: unknown, what: string): ShedError {
    if (dockerStatus(err) === 404) return containerGone(name);
    return backendError(`${what} ${containerName(name)}`, err);
  }
}

function containerGone(name: string): ShedError {
  return new ShedError("SHED_NOT_FOUND", `shed ${JSON.stringify(name)} does not exist (its container is gone)`, {
    hint: "`shed list` shows the sheds this server has",
  });
}
