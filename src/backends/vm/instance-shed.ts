import { type Shed, WORKSPACE } from "../../core/types.js";
import type { InstanceMeta } from "./instance-meta.js";

/** A VM instance as the API shows it; the metadata is the record, the live process says whether it runs. */
export function instanceShed(meta: InstanceMeta, running: boolean, dir: string): Shed {
  return {
    name: meta.name,
    backend: meta.backend,
    status: running ? "running" : "stopped",
    owner: "this_server",
    image: meta.image,
    created_at: meta.created_at,
    ...(meta.display ? { repo: meta.display } : {}),
    ...(meta.local_dir ? { local_dir: meta.local_dir.path } : {}),
    cpus: meta.cpus,
    memory_mib: meta.memory_mib,
    ...(meta.disk_bytes !== undefined ? { disk_gib: Math.round((meta.disk_bytes / 1024 ** 3) * 100) / 100 } : {}),
    workspace: WORKSPACE,
    resources: {
      instance_dir: dir,
      ...(running && meta.hypervisor ? { pid: String(meta.hypervisor.pid) } : {}),
      ...Object.fromEntries(Object.entries(meta.ports).map(([k, p]) => [`agent_${k}_port`, `127.0.0.1:${p}`])),
    },
    warnings: [],
  };
}
