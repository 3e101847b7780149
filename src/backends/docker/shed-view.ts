import { type Shed, type ShedStatus, WORKSPACE } from "../../core/types.js";
import type { Ownership } from "../backend.js";
import { containerName, LABEL, volumeName } from "./naming.js";
import { type Owner, ownerOf, unownedHint } from "./ownership.js";
import { sizeFromLabels } from "./size.js";

/** A container as the API shows it: its labels are the record (Docker is the source of truth). */
export function visibleShed(
  labels: Record<string, string>,
  name: string,
  status: ShedStatus,
  ownership: Ownership,
): Shed | undefined {
  const owner = ownerOf(labels, name, ownership);
  // This server's own, or an unowned old one (shown, never acted on); anyone else's is not shown.
  if (owner.kind === "this_server" || owner.kind === "unowned") return toShed(labels, name, status, owner);
  return undefined;
}

function toShed(labels: Record<string, string>, name: string, status: ShedStatus, owner: Owner): Shed {
  const localDir = labels[LABEL.localDir];
  return {
    name,
    backend: "docker",
    status,
    ...(owner.kind === "unowned"
      ? { owner: "unowned" as const, owner_hint: unownedHint(name) }
      : { owner: "this_server" as const }),
    image: labels[LABEL.image] ?? "",
    created_at: labels[LABEL.createdAt] ?? "",
    ...(labels[LABEL.repo] ? { repo: labels[LABEL.repo] } : {}),
    ...(localDir ? { local_dir: localDir } : {}),
    ...sizeFromLabels(labels),
    workspace: WORKSPACE,
    resources: localDir
      ? { container: containerName(name) }
      : { container: containerName(name), volume: volumeName(name) },
    warnings: [],
  };
}
