import { existsSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { Readable } from "node:stream";
import type { Command } from "@commander-js/extra-typings";
import { c as packTar } from "tar";
import { ShedError } from "../../core/errors.js";
import { formatSize } from "../../core/size.js";
import {
  type BuildImageRequest,
  type ImageInfo,
  type ImageListResponse,
  type ImagePruneResponse,
  imageNameSchema,
} from "../../protocol/image-types.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { table } from "../table.js";

/** The Dockerfile a context is built from when --file names none, in this order. */
const DEFAULT_DOCKERFILES = ["Dockerfile.shed", "Dockerfile"];

/** shed image build|list|delete|prune: images for Docker and the VM backends under one name. */
export function registerImageCommands(program: Command<[], GlobalOptions>): void {
  const image = program.command("image").description("build and manage images (one name: a Docker and a VM image)");

  image
    .command("build [context]")
    .description("build a Dockerfile (default ./Dockerfile.shed, then ./Dockerfile) into an image for every backend")
    .requiredOption("--name <name>", "the image's name (shed create --image NAME)")
    .option(
      "-f, --file <dockerfile>",
      "the Dockerfile, inside the context (default: Dockerfile.shed there, then Dockerfile)",
    )
    .option("--no-cache", "build again even when the context has not changed")
    .action(async (contextArg, opts) => {
      const ctx = new CliContext(program.opts());
      const name = checkName(opts.name);
      const dir = resolve(contextArg ?? ".");
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        throw new ShedError("INVALID_REQUEST", `build context ${dir} is not a directory`, {
          hint: "give the directory the Dockerfile builds from (default: the current one)",
        });
      }
      const dockerfile = pickDockerfile(dir, opts.file);
      const { api } = await ctx.server();
      // The context goes as a tar through the upload the repo bundles use (same size limit, max_bundle_size).
      const tar = Readable.from(packTar({ cwd: dir, portable: true }, ["."]) as AsyncIterable<Buffer>);
      const { id } = await api.upload("/api/bundles", tar);
      const req: BuildImageRequest = {
        name,
        context: id,
        dockerfile,
        source: dir,
        ...(opts.cache === false ? { no_cache: true } : {}),
      };
      try {
        await api.operation(
          "POST",
          "/api/images",
          req,
          (ev) => ctx.out.progress(ev),
          (b) => ctx.out.printed(b),
        );
      } finally {
        ctx.out.done();
      }
      const built = await api.json<ImageInfo>("GET", `/api/images/${name}`);
      ctx.result(built, () => `built image ${name}\n${describe(built)}\nuse it: shed create NAME --image ${name}`);
    });

  image
    .command("list")
    .description("the images: NAME, SOURCE, SIZE and the sheds that use each")
    .action(async () => {
      const ctx = new CliContext(program.opts());
      const { api } = await ctx.server();
      const { images } = await api.json<ImageListResponse>("GET", "/api/images");
      ctx.result({ images }, () =>
        table(
          ["NAME", "SOURCE", "SIZE", "SHEDS"],
          images.map((i) => [i.name, i.source, sizeText(i), i.sheds.join(", ")]),
        ),
      );
    });

  image
    .command("delete <name>")
    .description("remove a built image (both forms); refused while a shed uses it")
    .action(async (nameArg) => {
      const ctx = new CliContext(program.opts());
      const name = checkName(nameArg);
      const { api } = await ctx.server();
      const res = await api.json<{ deleted: string; removed: string[] }>("DELETE", `/api/images/${name}`);
      ctx.result(res, () => [`deleted image ${name}`, ...res.removed.map((r) => `  removed ${r}`)].join("\n"));
    });

  image
    .command("prune")
    .description("remove built images that no shed and no server config uses")
    .option("--dry-run", "only say what would be removed")
    .action(async (opts) => {
      const ctx = new CliContext(program.opts());
      const { api } = await ctx.server();
      const res = await api.json<ImagePruneResponse>("POST", `/api/images/prune${opts.dryRun ? "?dry_run=true" : ""}`);
      ctx.result(res, () =>
        res.removed.length === 0
          ? "nothing to prune"
          : [res.dry_run ? "would remove:" : "removed:", ...res.removed.map((r) => `  ${r}`)].join("\n"),
      );
    });
}

function checkName(name: string): string {
  const ok = imageNameSchema.safeParse(name);
  if (!ok.success) {
    throw new ShedError("INVALID_REQUEST", `--name ${JSON.stringify(name)} is not an image name`, {
      hint: "an image name uses a-z, 0-9 and single . _ - between them (it names a Docker image and a VM image)",
    });
  }
  return name;
}

/** The Dockerfile as a path inside the context: --file (relative to the current directory), else the defaults. */
function pickDockerfile(dir: string, file: string | undefined): string {
  if (file !== undefined) {
    const abs = resolve(file);
    const inside = relative(dir, abs);
    if (inside === "" || inside.startsWith("..") || isAbsolute(inside)) {
      throw new ShedError("INVALID_REQUEST", `--file ${file} is not inside the build context ${dir}`, {
        hint: "the Dockerfile travels with the context: put it inside the context directory",
      });
    }
    if (!existsSync(abs)) throw new ShedError("INVALID_REQUEST", `--file ${file}: no such file`);
    return inside.split("\\").join("/");
  }
  const found = DEFAULT_DOCKERFILES.find((f) => existsSync(resolve(dir, f)));
  if (!found) {
    throw new ShedError("INVALID_REQUEST", `no Dockerfile.shed or Dockerfile in ${dir}`, {
      hint: "write one there, or name it with --file",
    });
  }
  return found;
}

function sizeText(i: ImageInfo): string {
  const parts: string[] = [];
  if (i.docker) parts.push(`docker ${formatSize(i.docker.bytes)}`);
  if (i.vm) parts.push(`vm ${formatSize(i.vm.bytes)}`);
  return parts.join(", ") || "-";
}

function describe(i: ImageInfo): string {
  return [
    i.docker ? `  docker: ${i.docker.ref} (${formatSize(i.docker.bytes)})` : "  docker: -",
    i.vm ? `  vm:     ${i.vm.dir} (${formatSize(i.vm.bytes)})` : "  vm:     - (no VM backend on this server)",
  ].join("\n");
}
