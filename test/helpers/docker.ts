import Docker from "dockerode";
import { RUN_PREFIX } from "./names.js";

export const docker = new Docker();

/** Removes every container and volume this test run made (by name prefix). */
export async function cleanupDocker(prefix = RUN_PREFIX): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { name: [`shed-${prefix}`] } });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => {}),
    ),
  );
  const helpers = await docker.listContainers({ all: true, filters: { label: [`dev.shed.test=${prefix}`] } });
  await Promise.all(
    helpers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
  const { Volumes } = await docker.listVolumes({ filters: { name: [`shed-${prefix}`] } });
  await Promise.all(
    (Volumes ?? []).map((v) =>
      docker
        .getVolume(v.Name)
        .remove()
        .catch(() => {}),
    ),
  );
}

export async function containerExists(name: string): Promise<boolean> {
  try {
    await docker.getContainer(`shed-${name}`).inspect();
    return true;
  } catch {
    return false;
  }
}

export async function volumeExists(name: string): Promise<boolean> {
  try {
    await docker.getVolume(`shed-${name}-workspace`).inspect();
    return true;
  } catch {
    return false;
  }
}

/** Runs a command in a shed's container with the plain docker API (to check what Shed did, independently of it). */
export async function dockerExec(
  name: string,
  argv: string[],
  user = "shed",
): Promise<{ code: number; stdout: string; stderr: string }> {
  const exec = await docker
    .getContainer(`shed-${name}`)
    .exec({ Cmd: argv, User: user, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { PassThrough } = await import("node:stream");
  const o = new PassThrough();
  const e = new PassThrough();
  o.on("data", (c: Buffer) => out.push(c));
  e.on("data", (c: Buffer) => err.push(c));
  docker.modem.demuxStream(stream, o, e);
  await new Promise((r) => stream.on("end", r));
  let info = await exec.inspect();
  while (info.Running) info = await exec.inspect();
  return {
    code: info.ExitCode ?? -1,
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
  };
}

/** The anonymous volume that holds a shed's hook logs (/var/log/shed), by its Docker name. */
export async function logVolumeOf(name: string): Promise<string> {
  const info = await docker.getContainer(`shed-${name}`).inspect();
  const mount = info.Mounts.find((m) => m.Destination === "/var/log/shed");
  if (!mount?.Name) throw new Error(`shed-${name} has no volume at /var/log/shed`);
  return mount.Name;
}

export async function volumeNamed(volume: string): Promise<boolean> {
  try {
    await docker.getVolume(volume).inspect();
    return true;
  } catch {
    return false;
  }
}
