import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { pickDevcontainer } from "../config/devcontainer/find.js";
import { localEnvNames } from "../config/devcontainer/map.js";
import type { CreateShedRequest } from "../protocol/api-types.js";

/**
 * devcontainer.json of a local checkout (--repo PATH, or a --local-dir this
 * machine sees), read here and sent with the create request (issue 13): the
 * server needs its image and containerEnv before the container exists. Only
 * when the checkout has no .shed/provision.yaml, which wins (said in a note).
 */
export function devcontainerRequest(
  root: string | undefined,
  wanted: string | undefined,
  note: (text: string) => void,
): CreateShedRequest["devcontainer"] {
  if (!root || !existsSync(root)) return undefined;
  const found = pickDevcontainer(root, wanted);
  if (!found) return undefined;
  if (existsSync(join(root, ".shed", "provision.yaml"))) {
    note(`${found.path} is not used: .shed/provision.yaml is there too, and it wins`);
    return undefined;
  }
  const local_env: Record<string, string> = {};
  for (const n of localEnvNames(found.text)) {
    const v = process.env[n];
    if (v !== undefined) local_env[n] = v;
  }
  note(`provisioning from ${found.path} (no .shed/provision.yaml)`);
  return { path: found.path, text: found.text, local_env, workspace_basename: basename(root) };
}
