import { resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import type { Command } from "@commander-js/extra-typings";
import { parseDuration } from "../../core/duration.js";
import { ShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import { BACKENDS, type BackendName, type Shed } from "../../core/types.js";
import type { CreateShedRequest } from "../../protocol/api-types.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { devcontainerRequest } from "../devcontainer-request.js";
import { inspectLocalRepo, isLocalRepo, uploadLocalRepo } from "../repo-bundle.js";
import { repoCredentialsFromEnv } from "../repo-token.js";
import { sizeRequest } from "../size-flags.js";
import { autoSync, prepareAutoSync } from "../sync/auto.js";
import { stopShedTunnels } from "../tunnels/tunnel-ops.js";
import { describeShed } from "./describe.js";
import { deleteShed, operation, startOrStop } from "./lifecycle-ops.js";

/** create, start, stop, delete: lifecycle operations with live progress. */
export function registerShedCommands(program: Command<[], GlobalOptions>): void {
  program
    .command("create <name>")
    .description("create a shed (a container or VM with the repository in /workspace)")
    .option(
      "--repo <url-or-path>",
      "git URL to clone, or a local checkout to copy (as a git bundle); an https token can come from $SHED_REPO_TOKEN",
    )
    .option("--local-dir <dir>", "mount this directory (on the server) as /workspace instead of cloning")
    .option("--image <image>", "image to use (default: the server's default_image)")
    .option("--backend <backend>", `backend: ${BACKENDS.join(", ")} (default: the server's default_backend)`)
    .option("--no-provision", "skip the install and startup hooks")
    .option("--no-sync", "skip auto-sync after create")
    .option(
      "--sync-profile <profile>",
      "after create, sync this profile of sync.yaml (default: the profile named default)",
    )
    .option("--timeout <duration>", "give up on create after this long (e.g. 10m)")
    .option("--devcontainer <name>", "which devcontainer.json of the checkout to use, when it has several")
    .option("--cpus <n>", "CPUs (default: the server's vm_cpus for a VM; no limit on Docker)")
    .option("--memory <mb>", "memory in MiB (default: the server's vm_memory for a VM; no limit on Docker)")
    .option(
      "--disk <gb>",
      "VM disk in GiB, at least the image's size (default: vm_disk, else the image's; not on Docker)",
    )
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      if (opts.backend !== undefined && !(BACKENDS as readonly string[]).includes(opts.backend)) {
        throw new ShedError("INVALID_REQUEST", `unknown backend ${JSON.stringify(opts.backend)}`, {
          hint: `use one of ${BACKENDS.join(", ")}`,
        });
      }
      if (opts.repo && opts.localDir) {
        throw new ShedError("INVALID_REQUEST", "--repo and --local-dir cannot be used together", {
          hint: "--local-dir mounts an existing checkout as the workspace; --repo clones one into a fresh workspace",
        });
      }
      if (opts.timeout) parseDuration(opts.timeout, "--timeout");
      const size = sizeRequest(opts);
      if (opts.sync === false && opts.syncProfile !== undefined) {
        throw new ShedError("INVALID_REQUEST", "--sync-profile and --no-sync cannot be used together", {
          hint: "--no-sync skips auto-sync; --sync-profile picks what it syncs",
        });
      }
      // sync.yaml is read now, so an unknown --sync-profile fails before a shed is made for nothing.
      const syncPlan = opts.sync === false ? undefined : prepareAutoSync(ctx, opts.syncProfile);
      // A local checkout is checked before a server is even asked: a wrong path makes nothing.
      const localRepo = opts.repo && isLocalRepo(opts.repo) ? inspectLocalRepo(opts.repo) : undefined;
      const devcontainer = devcontainerRequest(
        localRepo?.top ?? (opts.localDir ? resolve(opts.localDir) : undefined),
        opts.devcontainer,
        (n) => process.stderr.write(`note: ${n}\n`),
      );
      const server = await ctx.server();
      const req: CreateShedRequest = { name, ...size };
      if (opts.backend) req.backend = opts.backend as BackendName;
      if (opts.image) req.image = opts.image;
      if (opts.localDir) req.local_dir = resolve(opts.localDir);
      if (opts.provision === false) req.no_provision = true;
      if (opts.timeout) req.timeout = opts.timeout;
      if (devcontainer) req.devcontainer = devcontainer;
      if (opts.repo) {
        if (localRepo) {
          const up = await uploadLocalRepo(server.api, localRepo);
          for (const n of up.notes) process.stderr.write(`note: ${n}\n`);
          req.repo_bundle = up.id;
          req.repo_label = up.label;
          if (up.origin) req.repo_origin = up.origin;
        } else {
          req.repo = opts.repo;
          // The server fetches a URL on its host and reads devcontainer.json there (issue 13).
          req.devcontainer_lookup = opts.devcontainer ? { name: opts.devcontainer } : {};
        }
        const credentials = repoCredentialsFromEnv(req.repo ?? req.repo_origin);
        if (credentials) req.repo_credentials = credentials;
      }
      const shed = await operation(ctx, server.api, "POST", "/api/sheds", req);
      // Create step 9 (seed): auto-sync on the client after the server returned; failures are warnings.
      const synced = syncPlan ? await autoSync(ctx, name, syncPlan) : undefined;
      ctx.result(
        synced ? { ...shed, sync: synced } : shed,
        () => `${describeShed(shed)}\nconnect: shed console ${name}`,
      );
    });

  for (const [verb, description] of [
    ["start", "start a stopped shed (runs the startup hook)"],
    ["stop", "stop a running shed (runs the shutdown hook; the workspace is kept)"],
  ] as const) {
    // `shed start|stop NAME` with no other option also runs on the quick path (quick.ts): same function.
    program
      .command(`${verb} <name>`)
      .description(description)
      .action(async (name) => {
        validateShedName(name);
        const ctx = new CliContext(program.opts());
        if (verb === "stop") await stopShedTunnels(ctx, { shed: name, server: ctx.cfg.pick(ctx.opts.server)?.name });
        await startOrStop(ctx, verb, name);
      });
  }

  program
    .command("delete <name>")
    .description("stop and remove a shed and its workspace")
    .option("-f, --force", "do not ask for confirmation")
    .option("--keep-volume", "keep the workspace volume (a later create of the same name reuses it)")
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      const { api } = await ctx.server();
      if (!opts.force) {
        const shed = await api.json<Shed>("GET", `/api/sheds/${name}`);
        await confirm(`Delete shed ${name}${opts.keepVolume || shed.local_dir ? "" : " and its workspace"}?`);
      }
      await stopShedTunnels(ctx, { shed: name, server: ctx.cfg.pick(ctx.opts.server)?.name });
      await deleteShed(ctx, name, { keepVolume: opts.keepVolume === true }, api);
    });
}

async function confirm(question: string): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new ShedError("INVALID_REQUEST", "refusing to delete without confirmation (stdin is not a terminal)", {
      hint: "pass --force",
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(`${question} [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim()))
    throw new ShedError("INVALID_REQUEST", "not deleted", { hint: "answer y to delete" });
}
