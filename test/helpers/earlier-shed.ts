import { docker } from "./docker.js";

/**
 * A Docker shed made the way an earlier Shed made it, for upgrade tests: the
 * label set `own` (whatever that version wrote to mark its objects) plus
 * backend, image and created-at, the labelled workspace volume, the hook-log
 * volume, `sleep infinity` under tini. Nothing this version added since (size
 * labels, say) is there. Returns the started container's id.
 */
export async function earlierVersionShed(
  name: string,
  own: Record<string, string>,
  opts: { volumeCreatedAt?: boolean } = {},
): Promise<string> {
  const createdAt = new Date().toISOString();
  await docker.createVolume({
    Name: `shed-${name}-workspace`,
    Labels: { ...own, ...(opts.volumeCreatedAt ? { "dev.shed.created-at": createdAt } : {}) },
  });
  const c = await docker.createContainer({
    name: `shed-${name}`,
    Image: "shed-base:latest",
    Hostname: name,
    Entrypoint: [],
    Cmd: ["sleep", "infinity"],
    WorkingDir: "/workspace",
    Env: ["SHED_CONTAINER=true", `SHED_NAME=${name}`, "SHED_WORKSPACE=/workspace"],
    Labels: {
      ...own,
      "dev.shed.backend": "docker",
      "dev.shed.image": "shed-base:latest",
      "dev.shed.created-at": createdAt,
    },
    HostConfig: {
      Init: true,
      Mounts: [
        { Type: "volume", Source: `shed-${name}-workspace`, Target: "/workspace" },
        {
          Type: "volume",
          Source: "",
          Target: "/var/log/shed",
          VolumeOptions: {
            NoCopy: false,
            Labels: { ...own, "dev.shed.role": "hook-logs" },
            DriverConfig: { Name: "local", Options: {} },
          },
        },
      ],
    },
  });
  await c.start();
  return c.id;
}
