import { existsSync } from "node:fs";
import { join, posix } from "node:path";
import type { Backend, CreateSpec } from "../backends/backend.js";
import { pickDevcontainer } from "../config/devcontainer/find.js";
import { type DevcontainerPlan, type MapWarning, mapDevcontainer } from "../config/devcontainer/map.js";
import { parseDevcontainer } from "../config/devcontainer/parse.js";
import { formatProblem } from "../config/yaml-source.js";
import { ShedError } from "../core/errors.js";
import type { RepoRemote } from "../core/repo-url.js";
import type { CreateShedRequest } from "../protocol/api-types.js";
import type { CreateContext } from "./create-steps.js";
import { bundleCheckout, type HostCheckout, shallowCloneOnHost } from "./devcontainer-fetch.js";
import { wantedUser } from "./devcontainer-user.js";
import type { Step, StepIO } from "./steps.js";

export interface DevcontainerAtCreate {
  plan: DevcontainerPlan;
  warnings: MapWarning[];
  /** The backend builds build.dockerfile before the container starts. */
  build: boolean;
}

/**
 * devcontainer.json as the create request carries it (the CLI read it from the
 * local checkout), read before anything is made: image and containerEnv shape
 * the container itself. A syntax or type error refuses only its property (a
 * warning); dockerComposeFile refuses the create (mapDevcontainer throws).
 */
export function devcontainerForCreate(
  req: NonNullable<CreateShedRequest["devcontainer"]>,
  backend: Backend,
  spec: CreateSpec,
  imageGiven: boolean,
): DevcontainerAtCreate {
  const { config, problems } = parseDevcontainer(req.text, req.path);
  const { plan, warnings } = mapDevcontainer(config, req.path, {
    localEnv: req.local_env ?? {},
    localWorkspaceFolderBasename: req.workspace_basename ?? "",
  });
  const all: MapWarning[] = [
    ...problems.map((p) => ({
      message: `${formatProblem(p)}`,
      hint: `fix ${req.path}; the rest of the file still applies`,
    })),
    ...warnings,
  ];
  const runsImages = backend.buildImage !== undefined;
  if (!runsImages && (plan.image || plan.build)) {
    all.push({
      message: `${req.path}: image and build are ignored on the ${backend.name} backend (a VM boots Shed's own image)`,
      hint: "use the docker backend for the dev container's image",
    });
  } else if (imageGiven && (plan.image || plan.build)) {
    all.push({
      message: `${req.path}: image/build ignored: --image was given`,
      hint: "leave out --image to use the file's",
    });
  } else if (plan.image && !plan.build) {
    spec.image = plan.image;
  }
  const build = runsImages && !imageGiven && plan.build !== undefined;
  if (Object.keys(plan.containerEnv).length) spec.env = { ...spec.env, ...plan.containerEnv };
  const user = wantedUser(plan);
  if (user) {
    // The credentials become that user's (copies in its home), once the guest shows it has the user.
    spec.remoteUser = user;
    if (spec.localDir) {
      all.push({
        message: `${req.path}: remoteUser/containerUser ${JSON.stringify(user)}: the --local-dir stays its owner's (user shed takes the owner's uid), so that user writes in /workspace only if the directory lets it`,
        hint: "leave out --local-dir (the repository is cloned as that user), or give the user the directory owner's uid in the image",
      });
    }
  }
  plan.warnings = all.map((w) => w.message);
  return { plan, warnings: all, build };
}

/**
 * Create step between storage and container start: for a repo URL, fetches it
 * on this host and reads devcontainer.json there; says what the file asked that
 * Shed does not do, builds its Dockerfile (the container starts from that
 * image) and keeps the plan in the shed's record for the hooks.
 */
export const DEVCONTAINER_STEP: Step<CreateContext> = {
  id: "devcontainer",
  title: "devcontainer.json",
  fatal: true,
  async run(ctx, io) {
    let fetched: HostCheckout | undefined;
    try {
      if (!ctx.devcontainer && ctx.devcontainerLookup && ctx.repo?.kind === "url") {
        fetched = await lookUpOnHost(ctx, ctx.repo, ctx.devcontainerLookup, io);
        if (!fetched) return { outcome: "skipped", reason: "the repository has no devcontainer.json to use" };
      }
      const dc = ctx.devcontainer;
      if (!dc) return { outcome: "skipped", reason: "no devcontainer.json in the request" };
      for (const w of dc.warnings) io.warn(w.message, w.hint);
      const built = dc.build && dc.plan.build ? await build(ctx, dc, fetched, io) : await pull(ctx, dc, io);
      ctx.prov.meta.update(ctx.spec.name, (m) => {
        m.devcontainer = dc.plan;
      });
      const stages = [...dc.plan.install, ...dc.plan.startup, ...dc.plan.attach].map((c) => c.property);
      return {
        outcome: "done",
        message: `${dc.plan.file}: ${stages.length ? stages.join(", ") : "no lifecycle commands"}${built}`,
      };
    } finally {
      fetched?.cleanup();
    }
  },
};

/**
 * A repo URL's devcontainer.json, from a shallow clone on this host (kept for a
 * build's context). A fetch that fails is a warning: the shed is made without it.
 */
async function lookUpOnHost(
  ctx: CreateContext,
  remote: RepoRemote,
  lookup: NonNullable<CreateContext["devcontainerLookup"]>,
  io: StepIO,
): Promise<HostCheckout | undefined> {
  let checkout: HostCheckout;
  try {
    checkout = await shallowCloneOnHost(remote, io.signal);
  } catch (err) {
    const e = err instanceof ShedError ? err : new ShedError("CLONE_FAILED", String(err));
    io.warn(`${e.message}; the shed is made without its devcontainer.json`, e.hint);
    return undefined;
  }
  try {
    const found = pickDevcontainer(checkout.dir, lookup.name);
    if (!found) {
      checkout.cleanup();
      return undefined;
    }
    if (existsSync(join(checkout.dir, ".shed", "provision.yaml"))) {
      io.output("stdout", `${found.path} is not used: .shed/provision.yaml is there too, and it wins\n`);
      checkout.cleanup();
      return undefined;
    }
    const basename = posix.basename(remote.url.replace(/\/+$/, "")).replace(/\.git$/, "");
    ctx.devcontainer = devcontainerForCreate(
      { path: found.path, text: found.text, workspace_basename: basename },
      ctx.backend,
      ctx.spec,
      lookup.imageGiven,
    );
    return checkout;
  } catch (err) {
    checkout.cleanup();
    throw err;
  }
}

/** The file's image, when the shed boots it: pulled if the engine lacks it (a failed pull ends the create). */
async function pull(ctx: CreateContext, dc: DevcontainerAtCreate, io: StepIO): Promise<string> {
  const image = dc.plan.image;
  if (!image || ctx.spec.image !== image || !ctx.backend.pullImage) return "";
  const { pulled } = await ctx.backend.pullImage(image, (text) => io.output("stdout", text));
  return pulled ? `; image ${image} pulled` : "";
}

async function build(ctx: CreateContext, dc: DevcontainerAtCreate, fetched: HostCheckout | undefined, io: StepIO) {
  const { build } = dc.plan;
  if (!build || !ctx.backend.buildImage) return "";
  const dockerfile = posix.relative(build.context, build.dockerfile);
  if (dockerfile.startsWith("../")) {
    throw new ShedError(
      "INVALID_CONFIG",
      `${dc.plan.file}: build: the Dockerfile ${build.dockerfile} is outside the context ${build.context}`,
      { hint: "keep the Dockerfile inside build.context" },
    );
  }
  const checkout = fetched ?? (await hostCheckout(ctx, io.signal));
  try {
    const result = await ctx.backend.buildImage(
      {
        contextDir: join(checkout.dir, build.context),
        dockerfile,
        args: build.args,
        ...(build.target ? { target: build.target } : {}),
      },
      (text) => io.output("stdout", text),
    );
    ctx.spec.image = result.image;
    return `; image ${result.image} ${result.cached ? "(cached: same Dockerfile and context)" : "built"}`;
  } finally {
    if (checkout !== fetched) checkout.cleanup();
  }
}

/**
 * The repository's files on the server's host, for a build's context: the
 * --local-dir itself, or the uploaded bundle cloned into a temporary folder.
 */
async function hostCheckout(ctx: CreateContext, signal: AbortSignal): Promise<HostCheckout> {
  if (ctx.spec.localDir) return { dir: ctx.spec.localDir.path, cleanup: () => undefined };
  if (ctx.repo?.kind !== "bundle") {
    throw new ShedError("NOT_SUPPORTED", "devcontainer.json build needs the repository's files on the server", {
      hint: "create from a local checkout (--repo PATH), a repo URL, or --local-dir",
    });
  }
  return bundleCheckout(ctx.repo.file, signal);
}
