// The peers Shed is measured against: the reference dev-container CLI (@devcontainers/cli, a dev
// dependency) and plain Docker. Everything made here carries the label dev.shed.bench=<run id>, so
// the end of a run (or an interrupted one) removes it by label.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, utimesSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { makeRepo, must, ROOT, run } from "./harness.js";

export const DEVCONTAINER = join(ROOT, "node_modules", ".bin", "devcontainer");
export const DEVCONTAINER_VERSION: string = JSON.parse(
  readFileSync(join(ROOT, "node_modules", "@devcontainers", "cli", "package.json"), "utf8"),
).version;
export const BENCH_LABEL = "dev.shed.bench";
export const IMAGE = "shed-base:latest";

export const docker = (args: string[]) => must(["docker", ...args], { quiet: true });

// The repo of the create-with-hooks rows. The install step writes into the workspace (a stand-in for
// fetched packages: nothing can be fetched here) and adds nothing to PATH; the startup step is short.
// Each appends a line to a file in /tmp, so every run checks, untimed, that each step ran as often as
// it should have, on all three systems.
const INSTALL =
  '#!/bin/sh\nset -e\nmkdir -p .deps\nfor i in 1 2 3 4 5 6 7 8; do echo "package $i" > ".deps/p$i"; done\necho done >> /tmp/bench-install.log\n';
const STARTUP = "#!/bin/sh\necho started >> /tmp/bench-startup.log\n";
export const INSTALL_SCRIPT = "h/install.sh";
export const STARTUP_SCRIPT = "h/startup.sh";

/** devcontainer.json for shed-base as is: `updateRemoteUserUID: false`, or the CLI builds an image of its own. */
function devcontainerJson(runId: string, hooks: boolean): string {
  return JSON.stringify(
    {
      image: IMAGE,
      updateRemoteUserUID: false,
      ...(hooks ? { onCreateCommand: [INSTALL_SCRIPT], postStartCommand: [STARTUP_SCRIPT] } : {}),
      runArgs: ["--label", `${BENCH_LABEL}=${runId}`],
    },
    null,
    2,
  );
}

/** The same steps declared for Shed (.shed/provision.yaml) and for the dev-container CLI. */
export function hookedRepoFiles(runId: string): Record<string, string> {
  return {
    ".shed/provision.yaml": `hooks:\n  install: ${INSTALL_SCRIPT}\n  startup: ${STARTUP_SCRIPT}\n`,
    ".devcontainer/devcontainer.json": devcontainerJson(runId, true),
    [INSTALL_SCRIPT]: INSTALL,
    [STARTUP_SCRIPT]: STARTUP,
  };
}

/** A git repository of `files` under `parent`, for `shed create --repo`. */
export function gitRepo(parent: string, files: Record<string, string>): string {
  const dir = makeRepo(mkdtempSync(join(parent, "repo-")), files);
  const git = (args: string[]) => spawnSync("git", ["-C", dir, ...args], { stdio: "ignore" });
  git(["init", "-q", "-b", "main"]);
  git(["add", "."]);
  git(["-c", "user.email=b@shed.invalid", "-c", "user.name=bench", "commit", "-qm", "bench"]);
  return dir;
}

/** A fresh workspace folder for `devcontainer up` (the CLI finds its container by the folder's path). */
export function devcontainerFolder(parent: string, runId: string, hooks: boolean): string {
  const files = hooks ? hookedRepoFiles(runId) : { ".devcontainer/devcontainer.json": devcontainerJson(runId, false) };
  return makeRepo(mkdtempSync(join(parent, "dc-")), files);
}

// `devcontainer up` fetches a control manifest from containers.dev unless its cached copy is under
// 5 minutes old. There is no such network here (the fetch fails with ENOTFOUND and it goes on with
// its built-in copy); a user online pays the fetch at most once in 5 minutes. Either way it is not
// what is being compared, so the cached copy is kept fresh before each timed `up`.
const MANIFEST = join(tmpdir(), `devcontainercli-${userInfo().username}`, "control-manifest.json");
function keepManifestFresh(): boolean {
  if (!existsSync(MANIFEST)) return false;
  const now = new Date();
  utimesSync(MANIFEST, now, now);
  return true;
}

export interface Up {
  ms: number;
  containerId: string;
}

export async function devcontainerUp(folder: string): Promise<Up> {
  keepManifestFresh();
  const r = await must([DEVCONTAINER, "up", "--workspace-folder", folder]);
  // Its result is one JSON line on stdout; its log goes to stderr.
  const last = r.stdout.trim().split("\n").pop() ?? "";
  const result = JSON.parse(last) as { outcome?: string; containerId?: string };
  if (result.outcome !== "success" || !result.containerId) {
    throw new Error(`devcontainer up ${folder}: ${last}\n${r.stderr.slice(-2000)}`);
  }
  return { ms: r.ms, containerId: result.containerId };
}

/** An untimed `up` when the CLI has no cached manifest yet, so no timed one includes the failed fetch. */
export async function warmDevcontainer(parent: string, runId: string): Promise<void> {
  if (keepManifestFresh()) return;
  const up = await devcontainerUp(devcontainerFolder(parent, runId, false));
  await docker(["rm", "-f", "-v", up.containerId]);
}

export const devcontainerExec = (folder: string, argv: string[]) =>
  must([DEVCONTAINER, "exec", "--workspace-folder", folder, ...argv], { quiet: true });

/**
 * The Docker floor of a create: volume create, run, then exec of each step, timed as one. The repo is
 * bind-mounted at /repo (the floor does not clone); the steps run in /workspace, the volume.
 */
export async function floorCreate(runId: string, name: string, steps: string[][], repo?: string): Promise<number> {
  const label = `${BENCH_LABEL}=${runId}`;
  const t0 = performance.now();
  await docker(["volume", "create", "--label", label, name]);
  const mounts = ["-v", `${name}:/workspace`, ...(repo ? ["-v", `${repo}:/repo:ro`] : [])];
  await docker(["run", "-d", "--init", "--label", label, "--name", name, ...mounts, "-w", "/workspace", IMAGE]);
  for (const argv of steps) await docker(["exec", name, ...argv]);
  return performance.now() - t0;
}

/** The graceful delete Shed's delete is measured against: stop, remove with its volumes, remove the workspace volume. */
export async function floorDelete(name: string): Promise<number> {
  const t0 = performance.now();
  await docker(["stop", name]);
  await docker(["rm", "-v", name]);
  await docker(["volume", "rm", name]);
  return performance.now() - t0;
}

/** How many times the install and startup steps have run in a container (read from their marker files). */
export async function stepCounts(container: string): Promise<{ install: number; startup: number }> {
  const count = async (file: string) => {
    const r = await run(["docker", "exec", container, "cat", file]);
    return r.code === 0 ? r.stdout.split("\n").filter(Boolean).length : 0;
  };
  return { install: await count("/tmp/bench-install.log"), startup: await count("/tmp/bench-startup.log") };
}

export async function expectSteps(who: string, container: string, install: number, startup: number): Promise<void> {
  const got = await stepCounts(container);
  if (got.install !== install || got.startup !== startup) {
    throw new Error(
      `${who}: expected install x${install} and startup x${startup}, found x${got.install} and x${got.startup}`,
    );
  }
}

export async function isRunning(container: string): Promise<boolean> {
  const r = await run(["docker", "inspect", "-f", "{{.State.Running}}", container]);
  return r.code === 0 && r.stdout.trim() === "true";
}

export async function exists(container: string): Promise<boolean> {
  return (await run(["docker", "inspect", container], { quiet: true })).code === 0;
}

/** Removes every container and volume carrying `label` (key=value), containers first with their volumes. */
export async function removeLabelled(label: string): Promise<number> {
  const ids = async (what: string[]) =>
    (await run(["docker", ...what, "--filter", `label=${label}`])).stdout.split(/\s+/).filter(Boolean);
  const containers = await ids(["ps", "-aq"]);
  if (containers.length > 0) await run(["docker", "rm", "-f", "-v", ...containers], { quiet: true });
  const volumes = await ids(["volume", "ls", "-q"]);
  if (volumes.length > 0) await run(["docker", "volume", "rm", "-f", ...volumes], { quiet: true });
  return containers.length + volumes.length;
}
