import { existsSync, lstatSync, rmSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { hostArch, resolveVmImage } from "../../backends/vm/vm-image.js";
import type { ServerConfig } from "../../config/server-config.js";
import { ShedError } from "../../core/errors.js";
import type { LifecycleSink } from "../../core/events.js";
import type { Shed } from "../../core/types.js";
import { NameLock } from "../../lifecycle/name-lock.js";
import type { BuildImageRequest, ImageInfo, ImagePruneResponse } from "../../protocol/image-types.js";
import { summarizeContext } from "./context-hash.js";
import { dockerBuild, IMAGE_LABEL } from "./docker-build.js";
import { type ImageRecord, ImageRecords } from "./image-records.js";
import { buildsInUse, diskBytes, shedsByImage, vmBuildsOf } from "./image-usage.js";
import { buildVmImage } from "./vm-build.js";

export interface ImageServiceDeps {
  config: ServerConfig;
  docker: Docker;
  /** Every shed of this server (the lifecycle's list). */
  sheds(): Promise<Shed[]>;
  /** The uploaded context's file, by its upload id. */
  upload(id: string): string | undefined;
}

const VM_BACKENDS = new Set(["qemu", "firecracker", "vz"]);

/**
 * `shed image build|list|delete|prune`: images Shed builds from a user's Dockerfile, each one name
 * for two forms: the Docker image NAME:latest (what `--image NAME` gives a Docker shed) and the VM
 * image NAME-<arch> under vm_images_dir (what it gives a VM shed, resolveVmImage). Operations on
 * one name run one after another.
 */
export class ImageService {
  private readonly records: ImageRecords;
  private readonly locks = new NameLock();
  private readonly arch = hostArch();

  constructor(private readonly deps: ImageServiceDeps) {
    this.records = new ImageRecords(deps.config.dataDir);
  }

  private get vmEnabled(): boolean {
    return this.deps.config.enabledBackends.some((b) => VM_BACKENDS.has(b));
  }

  async build(req: BuildImageRequest, emit: LifecycleSink): Promise<void> {
    const file = this.deps.upload(req.context);
    if (!file) {
      throw new ShedError("INVALID_REQUEST", `context ${req.context} is not an upload on this server`, {
        hint: "upload the context as a tar with PUT /api/bundles first (shed image build does this)",
      });
    }
    const ref = `${req.name}:latest`;
    await this.locks.run(req.name, async () => {
      await this.checkNameFree(req.name, ref);
      const context = await step(emit, "context", "read the build context", async () => {
        const summary = await summarizeContext(file, req.dockerfile);
        return { value: summary, message: `${summary.files} entries, content sha256 ${summary.hash.slice(0, 16)}` };
      });
      const before = this.records.get(req.name);
      const cached =
        !req.no_cache &&
        before?.context_hash === context.hash &&
        before.dockerfile === req.dockerfile &&
        (await this.dockerId(ref)) === before.docker_id;
      const dockerId = cached
        ? skip(emit, "docker", `cache hit: this context was built into ${ref} at ${before?.built_at}`, before.docker_id)
        : await step(emit, "docker", `docker build of ${ref} from ${req.dockerfile}`, async () => {
            const id = await dockerBuild(this.deps.docker, {
              contextFile: file,
              dockerfile: req.dockerfile,
              ref,
              name: req.name,
              contextHash: context.hash,
              noCache: req.no_cache === true,
              step: "docker",
              emit,
            });
            return { value: id, message: `built ${ref} (${id.slice(7, 19)})` };
          });
      let vmDir: string | undefined;
      if (this.vmEnabled) {
        const { imagesDir } = this.deps.config.vm;
        const current = before?.vm_dir && existsSync(join(before.vm_dir, "rootfs.ext4")) ? before.vm_dir : undefined;
        vmDir =
          cached && current && before?.docker_id === dockerId
            ? skip(emit, "vm", `cache hit: the VM image ${current} was made from this build`, current)
            : await step(emit, "vm", `VM image ${req.name}-${this.arch} (ext4 root filesystem)`, async () => {
                await buildVmImage({
                  name: req.name,
                  base: dockerId,
                  imagesDir,
                  arch: this.arch,
                  force: req.no_cache === true,
                  step: "vm",
                  emit,
                });
                const image = resolveVmImage(imagesDir, this.arch, req.name);
                return { value: image.dir, message: image.dir };
              });
      } else {
        emit({
          type: "warning",
          step: "vm",
          message: "no VM backend is enabled on this server: only the Docker image was built",
          hint: "enable qemu (or firecracker, vz) in enabled_backends and build again for the VM image",
        });
      }
      this.records.put({
        version: 1,
        name: req.name,
        source: req.source,
        dockerfile: req.dockerfile,
        context_hash: context.hash,
        docker_id: dockerId,
        ...(vmDir ? { vm_dir: vmDir } : {}),
        arch: this.arch,
        built_at: cached && before ? before.built_at : new Date().toISOString(),
      });
    });
  }

  async get(name: string): Promise<ImageInfo> {
    const found = (await this.list()).find((i) => i.name === name);
    if (!found) throw notFound(name);
    return found;
  }

  /** Built images, the config's defaults, and any other image a shed names. */
  async list(): Promise<ImageInfo[]> {
    const sheds = await this.deps.sheds();
    const users = shedsByImage(sheds);
    const out = new Map<string, ImageInfo>();
    for (const r of this.records.list()) {
      out.set(r.name, {
        name: r.name,
        source: `${r.source} (${r.dockerfile})`,
        kind: "built",
        ...(await this.forms(r.name)),
        sheds: users.get(r.name) ?? [],
        context_hash: r.context_hash,
        built_at: r.built_at,
      });
    }
    for (const [name, what] of this.configNames()) {
      if (out.has(name)) continue;
      out.set(name, { name, source: what, kind: "config", ...(await this.forms(name)), sheds: users.get(name) ?? [] });
    }
    for (const [name, using] of users) {
      if (out.has(name)) continue;
      out.set(name, { name, source: "named by a shed", kind: "external", ...(await this.forms(name)), sheds: using });
    }
    return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Removes a built image (both forms): refused while a shed or the server config uses it. */
  async delete(name: string): Promise<string[]> {
    return this.locks.run(name, async () => {
      const record = this.records.get(name);
      if (!record) throw notFound(name);
      const sheds = await this.deps.sheds();
      const using = shedsByImage(sheds).get(name) ?? [];
      if (using.length > 0) {
        throw new ShedError(
          "IMAGE_IN_USE",
          `image ${name} is used by ${using.length === 1 ? "shed" : "sheds"} ${using.join(", ")}`,
          {
            hint: `delete ${using.length === 1 ? "that shed" : "those sheds"} first (shed delete NAME), then the image`,
            details: { sheds: using },
          },
        );
      }
      const config = this.configNames().get(name);
      if (config) {
        throw new ShedError("IMAGE_IN_USE", `image ${name} is the server's ${config}`, {
          hint: "set another image in the server config first",
        });
      }
      return this.removeImage(record, sheds);
    });
  }

  /** Removes the built images no shed and no config names, and superseded builds of the others. */
  async prune(dryRun: boolean): Promise<ImagePruneResponse> {
    const sheds = await this.deps.sheds();
    const users = shedsByImage(sheds);
    const config = this.configNames();
    const removed: string[] = [];
    const removedRecords: string[] = [];
    const inUse = buildsInUse(this.deps.config.dataDir, sheds);
    for (const record of this.records.list()) {
      if (users.has(record.name) || config.has(record.name)) {
        // Kept: but a build its link no longer points at, with no disk on it, is left over from a rebuild.
        if (inUse.unreadable.length > 0) continue;
        const { builds, current } = vmBuildsOf(this.deps.config.vm.imagesDir, record.name, this.arch);
        for (const dir of builds.filter((d) => d !== current && !inUse.dirs.has(d))) {
          removed.push(`VM image build ${dir} (superseded)`);
          if (!dryRun) rmSync(dir, { recursive: true, force: true });
        }
        continue;
      }
      removedRecords.push(record.name);
      if (dryRun) removed.push(`image ${record.name} (${record.source})`);
      else removed.push(...(await this.locks.run(record.name, () => this.removeImage(record, sheds))));
    }
    // Earlier builds that a rebuild left untagged, of names this server built (another server on the
    // same engine keeps its own).
    const ours = new Set(this.records.list().map((r) => r.name));
    for (const r of removedRecords) ours.add(r);
    const dangling = await this.deps.docker.listImages({
      filters: JSON.stringify({ dangling: ["true"], label: [IMAGE_LABEL.name] }),
    });
    for (const img of dangling.filter((i) => ours.has(i.Labels?.[IMAGE_LABEL.name] ?? ""))) {
      const what = `Docker image ${img.Id.slice(7, 19)} (an earlier build of ${img.Labels?.[IMAGE_LABEL.name] ?? "?"})`;
      if (dryRun) {
        removed.push(what);
        continue;
      }
      try {
        await this.deps.docker.getImage(img.Id).remove();
        removed.push(what);
      } catch {
        // A container (not a shed's: those use tagged images) still runs it: it stays.
      }
    }
    return { dry_run: dryRun, removed };
  }

  private async removeImage(record: ImageRecord, sheds: readonly Shed[]): Promise<string[]> {
    const removed: string[] = [];
    for (const ref of [`${record.name}:latest`, `${record.name}:vm-${this.arch}`]) {
      try {
        await this.deps.docker.getImage(ref).remove();
        removed.push(`Docker image ${ref}`);
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        if (status === 404) continue;
        throw new ShedError("BACKEND_ERROR", `could not remove the Docker image ${ref}: ${(err as Error).message}`, {
          hint: "a container not made by Shed may use it: `docker ps -a --filter ancestor=IMAGE` finds it",
        });
      }
    }
    const { imagesDir } = this.deps.config.vm;
    const link = join(imagesDir, `${record.name}-${this.arch}`);
    if (lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink()) {
      rmSync(link);
      removed.push(`VM image link ${link}`);
    }
    const inUse = buildsInUse(this.deps.config.dataDir, sheds);
    for (const dir of vmBuildsOf(imagesDir, record.name, this.arch).builds) {
      if (inUse.unreadable.length > 0 || inUse.dirs.has(dir)) {
        removed.push(`VM image build ${dir} kept: a kept disk (shed delete --keep-volume) is made on it`);
        continue;
      }
      rmSync(dir, { recursive: true, force: true });
      removed.push(`VM image build ${dir}`);
    }
    this.records.remove(record.name);
    return removed;
  }

  /**
   * A build retags NAME:latest: never over an image Shed did not build (a user's own, or the
   * server's default images, which `npm run build-image` and `build-vm-image` make).
   */
  private async checkNameFree(name: string, ref: string): Promise<void> {
    const config = this.configNames().get(name);
    if (config || name === "shed-vm" || name === "shed-vm-rootfs") {
      throw new ShedError(
        "INVALID_REQUEST",
        `image name ${name} is the server's own (${config ?? "the default VM image"})`,
        {
          hint: "pick another --name",
        },
      );
    }
    let labels: Record<string, string> | undefined;
    try {
      labels = (await this.deps.docker.getImage(ref).inspect()).Config?.Labels ?? {};
    } catch {
      return; // not on the engine: free
    }
    if (labels[IMAGE_LABEL.name] !== name) {
      throw new ShedError("INVALID_REQUEST", `the Docker image ${ref} exists and was not built by shed image build`, {
        hint: "pick another --name; a build would take the tag from that image",
        details: { image: ref },
      });
    }
  }

  /** Names the server config refers to, with the key that does. */
  private configNames(): Map<string, string> {
    const { defaultImage, vm } = this.deps.config;
    const names = new Map<string, string>();
    names.set(defaultImage.endsWith(":latest") ? defaultImage.slice(0, -7) : defaultImage, "config default_image");
    if (this.vmEnabled) names.set(vm.image, "config vm_image");
    return names;
  }

  private async forms(name: string): Promise<Pick<ImageInfo, "docker" | "vm">> {
    const out: Pick<ImageInfo, "docker" | "vm"> = {};
    const ref = name.includes(":") ? name : `${name}:latest`;
    try {
      const info = await this.deps.docker.getImage(ref).inspect();
      out.docker = { ref, id: info.Id, bytes: info.Size };
    } catch {
      // Not on the engine.
    }
    const link = join(this.deps.config.vm.imagesDir, `${name}-${this.arch}`);
    if (!name.includes(":") && existsSync(join(link, "rootfs.ext4"))) {
      const dir = resolveVmImage(this.deps.config.vm.imagesDir, this.arch, name).dir;
      out.vm = { dir, bytes: diskBytes(dir) };
    }
    return out;
  }

  private async dockerId(ref: string): Promise<string | undefined> {
    try {
      return (await this.deps.docker.getImage(ref).inspect()).Id;
    } catch {
      return undefined;
    }
  }
}

function notFound(name: string): ShedError {
  return new ShedError("IMAGE_NOT_FOUND", `no image ${JSON.stringify(name)} was built on this server`, {
    hint: "`shed image list` shows the images; `shed image build --name NAME` makes one",
  });
}

/** One step of a build, with its start and end events. */
async function step<T>(
  emit: LifecycleSink,
  name: string,
  title: string,
  run: () => Promise<{ value: T; message: string }>,
): Promise<T> {
  const started = Date.now();
  emit({ type: "step", step: name, title });
  try {
    const { value, message } = await run();
    emit({ type: "step_end", step: name, outcome: "succeeded", duration_ms: Date.now() - started, message });
    return value;
  } catch (err) {
    emit({
      type: "step_end",
      step: name,
      outcome: "failed",
      duration_ms: Date.now() - started,
      message: (err as Error).message,
    });
    throw err;
  }
}

function skip<T>(emit: LifecycleSink, name: string, reason: string, value: T): T {
  emit({ type: "step", step: name, title: name === "docker" ? "docker build" : "VM image" });
  emit({ type: "step_end", step: name, outcome: "skipped", duration_ms: 0, message: reason });
  return value;
}
