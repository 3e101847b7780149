import Docker from "dockerode";
import { ShedError } from "../../core/errors.js";
import { type Shed, type ShedStatus, shedBaseEnv, WORKSPACE } from "../../core/types.js";
import { stagingPath } from "../../guest/credentials.js";
import type { GuestExec } from "../../guest/exec.js";
import { HOOK_LOG_DIR } from "../../guest/hook-runner.js";
import type { Backend, CreateSpec, RemoveOptions, StorageResult } from "../backend.js";
import { CAPABILITIES } from "../capabilities.js";
import { backendError, dockerStatus, engineMessage } from "./docker-errors.js";
import { DockerGuestExec } from "./docker-exec.js";
import { containerName, LABEL, volumeName } from "./naming.js";

/**
 * The Docker column of the seed's tables: a named volume (or a bind mount of
 * --local-dir) at /workspace, a container `shed-<name>` labelled so that Docker
 * is the source of truth, credentials bind-mounted at creation (directly, or
 * read-only at a staging path for a copy owned by user shed).
 */
export class DockerBackend implements Backend {
  readonly name = "docker" as const;
  readonly capabilities = CAPABILITIES.docker;
  readonly docker: Docker;

  constructor(docker?: Docker) {
    this.docker = docker ?? new Docker();
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw backendError("docker", err);
    }
  }

  async prepareStorage(spec: CreateSpec): Promise<StorageResult> {
    if (spec.localDir) return { created: false, reused: false };
    const volume = this.docker.getVolume(volumeName(spec.name));
    try {
      await volume.inspect();
      return { created: false, reused: true };
    } catch (err) {
      if (dockerStatus(err) !== 404) throw backendError(`inspect volume ${volumeName(spec.name)}`, err);
    }
    try {
      await this.docker.createVolume({
        Name: volumeName(spec.name),
        Labels: { [LABEL.managed]: "true", [LABEL.name]: spec.name },
      });
    } catch (err) {
      throw backendError(`create volume ${volumeName(spec.name)}`, err);
    }
    return { created: true, reused: false };
  }

  async removeStorage(name: string): Promise<void> {
    try {
      await this.docker.getVolume(volumeName(name)).remove();
    } catch (err) {
      if (dockerStatus(err) !== 404) throw backendError(`remove volume ${volumeName(name)}`, err);
    }
  }

  async createAndStart(spec: CreateSpec): Promise<void> {
    const mounts: Docker.MountSettings[] = [
      spec.localDir
        ? { Type: "bind", Source: spec.localDir, Target: WORKSPACE }
        : { Type: "volume", Source: volumeName(spec.name), Target: WORKSPACE },
      // A source owned by uid 1000 is mounted at its target (live); any other is
      // mounted read-only at its staging path and copied as user shed by the
      // credential steps (src/guest/credentials.ts).
      ...spec.credentials.map(
        (c): Docker.MountSettings =>
          c.mode === "direct"
            ? { Type: "bind", Source: c.source, Target: c.target, ReadOnly: c.readonly }
            : { Type: "bind", Source: c.source, Target: stagingPath(c), ReadOnly: true },
      ),
      // The hook logs live in a volume of their own (anonymous: it goes with the container), which
      // the server can read on the engine's host: hook output is read from there, not relayed by exec.
      {
        Type: "volume",
        Source: "",
        Target: HOOK_LOG_DIR,
        // Labelled, so a log volume left by a container removed without -v says whose it was.
        VolumeOptions: {
          NoCopy: false,
          Labels: { [LABEL.managed]: "true", [LABEL.name]: spec.name, [LABEL.role]: "hook-logs" },
          DriverConfig: { Name: "local", Options: {} },
        },
      },
    ];
    const labels: Record<string, string> = {
      [LABEL.managed]: "true",
      [LABEL.name]: spec.name,
      [LABEL.backend]: "docker",
      [LABEL.image]: spec.image,
      [LABEL.createdAt]: spec.createdAt,
    };
    if (spec.repoDisplay) labels[LABEL.repo] = spec.repoDisplay;
    if (spec.localDir) labels[LABEL.localDir] = spec.localDir;

    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        name: containerName(spec.name),
        Image: spec.image,
        Hostname: spec.name,
        // A shed lives until stopped, whatever the image's own command is; tini (Init) reaps zombies.
        Entrypoint: [],
        Cmd: ["sleep", "infinity"],
        WorkingDir: WORKSPACE,
        Env: Object.entries({ ...spec.env, ...shedBaseEnv(spec.name) }).map(([k, v]) => `${k}=${v}`),
        Labels: labels,
        HostConfig: { Init: true, Mounts: mounts },
      });
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
      if (dockerStatus(err) === 409) {
        throw new ShedError("SHED_ALREADY_EXISTS", `a container named ${containerName(spec.name)} already exists`, {
          hint: "remove it (docker rm) or choose another shed name",
        });
      }
      throw backendError(`create container ${containerName(spec.name)}`, err);
    }
    try {
      await container.start();
    } catch (err) {
      throw backendError(`start container ${containerName(spec.name)}`, err);
    }
  }

  async start(name: string): Promise<void> {
    try {
      await this.docker.getContainer(containerName(name)).start();
    } catch (err) {
      if (dockerStatus(err) === 304) return; // already running
      throw this.mapMissing(name, err, "start");
    }
  }

  async stop(name: string, timeoutMs: number): Promise<void> {
    try {
      await this.docker.getContainer(containerName(name)).stop({ t: Math.max(0, Math.ceil(timeoutMs / 1000)) });
    } catch (err) {
      if (dockerStatus(err) === 304) return; // already stopped
      throw this.mapMissing(name, err, "stop");
    }
  }

  async remove(name: string, opts: RemoveOptions): Promise<void> {
    try {
      // v: the anonymous hook-log volume goes with the container; named volumes (the workspace) never do.
      await this.docker.getContainer(containerName(name)).remove({ force: true, v: true });
    } catch (err) {
      if (dockerStatus(err) !== 404) throw backendError(`remove container ${containerName(name)}`, err);
    }
    if (!opts.keepVolume) await this.removeStorage(name);
  }

  async get(name: string): Promise<Shed | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(containerName(name)).inspect();
    } catch (err) {
      if (dockerStatus(err) === 404) return undefined;
      throw backendError(`inspect ${containerName(name)}`, err);
    }
    const labels = info.Config.Labels ?? {};
    if (labels[LABEL.managed] !== "true" || labels[LABEL.name] !== name) return undefined;
    return this.toShed(labels, info.State.Running ? "running" : "stopped");
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
    return containers
      .filter((c) => c.Labels[LABEL.name])
      .map((c) => this.toShed(c.Labels, c.State === "running" ? "running" : "stopped"))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  guest(name: string): GuestExec {
    return new DockerGuestExec(this.docker, containerName(name));
  }

  private toShed(labels: Record<string, string>, status: ShedStatus): Shed {
    const name = labels[LABEL.name] ?? "";
    const localDir = labels[LABEL.localDir];
    return {
      name,
      backend: "docker",
      status,
      image: labels[LABEL.image] ?? "",
      created_at: labels[LABEL.createdAt] ?? "",
      ...(labels[LABEL.repo] ? { repo: labels[LABEL.repo] } : {}),
      ...(localDir ? { local_dir: localDir } : {}),
      workspace: WORKSPACE,
      resources: localDir
        ? { container: containerName(name) }
        : { container: containerName(name), volume: volumeName(name) },
      warnings: [],
    };
  }

  private mapMissing(name: string, err: unknown, what: string): ShedError {
    if (dockerStatus(err) === 404) {
      return new ShedError("SHED_NOT_FOUND", `shed ${JSON.stringify(name)} does not exist (its container is gone)`, {
        hint: "`shed list` shows the sheds this server has",
      });
    }
    return backendError(`${what} ${containerName(name)}`, err);
  }
}
