import type { BackendName } from "../core/types.js";

/**
 * The seed's "Backend Differences at a Glance" table as data, with QEMU (the
 * VM path that runs on any Linux) beside the seed's three. The API and the
 * docs read it; lifecycle code never branches on it: each differing cell is a
 * Backend method (backend.ts).
 */
export interface BackendCapabilities {
  credentialMechanism: "bind_mount" | "tar_through_agent" | "virtiofs_and_tar";
  localDir: "bind_mount" | "virtiofs" | false;
  /** Per the seed Docker has none; Shed runs it on Docker when the stop goes through Shed (issue 3). */
  shutdownHook: "native" | "through_shed";
  credentialLiveSync: "bind_mount" | "watchers_through_agent" | "virtiofs_and_watchers";
  workspacePersistence: "named_volume" | "rootfs_image";
  /** Hooks and exec travel over: */
  execTransport: "docker_exec" | "agent_vsock" | "agent_loopback_tcp";
}

export const CAPABILITIES: Record<BackendName, BackendCapabilities> = {
  docker: {
    credentialMechanism: "bind_mount",
    localDir: "bind_mount",
    shutdownHook: "through_shed",
    credentialLiveSync: "bind_mount",
    workspacePersistence: "named_volume",
    execTransport: "docker_exec",
  },
  qemu: {
    credentialMechanism: "tar_through_agent",
    // virtiofsd (run as root by shed-server) over a vhost-user socket and shared guest memory.
    localDir: "virtiofs",
    shutdownHook: "native",
    credentialLiveSync: "watchers_through_agent",
    workspacePersistence: "rootfs_image",
    // A loopback-forwarded port guarded by a per-VM secret (QEMU over vhost-vsock is not built: no machine here has it).
    execTransport: "agent_loopback_tcp",
  },
  firecracker: {
    credentialMechanism: "tar_through_agent",
    localDir: false,
    shutdownHook: "native",
    credentialLiveSync: "watchers_through_agent",
    workspacePersistence: "rootfs_image",
    execTransport: "agent_vsock",
  },
  vz: {
    credentialMechanism: "virtiofs_and_tar",
    localDir: "virtiofs",
    shutdownHook: "native",
    credentialLiveSync: "virtiofs_and_watchers",
    workspacePersistence: "rootfs_image",
    execTransport: "agent_vsock",
  },
};
