import type Docker from "dockerode";
import { shedBaseEnv, WORKSPACE } from "../../core/types.js";
import { HOOK_LOG_DIR } from "../../guest/hook-runner.js";
import type { CreateSpec } from "../backend.js";
import { planCredentials, stagingPath } from "./credentials.js";
import { containerName, LABEL, volumeName } from "./naming.js";
import { dockerLimits } from "./size.js";

/**
 * What a shed's container is made with: its mounts (the workspace, the
 * credentials, the hook-log volume), the labels that make Docker the source
 * of truth, its environment and limits. `own` are the labels that make an
 * object this server's (the backend's ownLabels).
 */
export function containerSpec(spec: CreateSpec, own: Record<string, string>): Docker.ContainerCreateOptions {
  const mounts: Docker.MountSettings[] = [
    spec.localDir
      ? { Type: "bind", Source: spec.localDir.path, Target: WORKSPACE }
      : { Type: "volume", Source: volumeName(spec.name), Target: WORKSPACE },
    // A source owned by uid 1000 is mounted at its target (live); any other is
    // mounted read-only at its staging path and copied as user shed by the
    // credential steps (credentials.ts).
    ...planCredentials(spec.credentials, spec).map(
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
        Labels: { ...own, [LABEL.role]: "hook-logs" },
        DriverConfig: { Name: "local", Options: {} },
      },
    },
  ];
  const labels: Record<string, string> = {
    ...own,
    [LABEL.backend]: "docker",
    [LABEL.image]: spec.image,
    [LABEL.createdAt]: spec.createdAt,
  };
  if (spec.repoDisplay) labels[LABEL.repo] = spec.repoDisplay;
  if (spec.localDir) labels[LABEL.localDir] = spec.localDir.path;
  if (spec.size.cpus !== undefined) labels[LABEL.cpus] = String(spec.size.cpus);
  if (spec.size.memoryMiB !== undefined) labels[LABEL.memoryMiB] = String(spec.size.memoryMiB);
  return {
    name: containerName(spec.name),
    Image: spec.image,
    Hostname: spec.name,
    // A shed lives until stopped, whatever the image's own command is; tini (Init) reaps zombies.
    Entrypoint: [],
    Cmd: ["sleep", "infinity"],
    WorkingDir: WORKSPACE,
    Env: Object.entries({ ...spec.env, ...shedBaseEnv(spec.name) }).map(([k, v]) => `${k}=${v}`),
    Labels: labels,
    HostConfig: { Init: true, Mounts: mounts, ...dockerLimits(spec.size) },
  };
}
