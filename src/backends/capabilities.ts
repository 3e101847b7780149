import type { BackendName } from "../core/types.js";

/**
 * The seed's "Backend Differences at a Glance" table as data. Lifecycle code
 * asks these values instead of testing backend names.
 */
export interface BackendCapabilities {
  credentialMechanism: "bind_mount" | "tar_over_vsock" | "virtiofs_and_tar";
  localDir: "bind_mount" | "virtiofs" | false;
  /** Per the seed Docker has none; Shed runs it on Docker when the stop goes through Shed (issue 3). */
  shutdownHook: "native" | "through_shed";
  credentialLiveSync: "bind_mount" | "fsnotify_vsock" | "virtiofs_and_fsnotify";
  workspacePersistence: "named_volume" | "rootfs_image";
  /** Hooks and exec travel over: */
  execTransport: "docker_exec" | "vsock";
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
  firecracker: {
    credentialMechanism: "tar_over_vsock",
    localDir: false,
    shutdownHook: "native",
    credentialLiveSync: "fsnotify_vsock",
    workspacePersistence: "rootfs_image",
    execTransport: "vsock",
  },
  vz: {
    credentialMechanism: "virtiofs_and_tar",
    localDir: "virtiofs",
    shutdownHook: "native",
    credentialLiveSync: "virtiofs_and_fsnotify",
    workspacePersistence: "rootfs_image",
    execTransport: "vsock",
  },
};
