import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
import { ShedError } from "../../core/errors.js";
import { DEVCONTAINER_MAX_BYTES } from "./parse.js";

/**
 * Where a repository keeps devcontainer.json (the spec's places):
 * `.devcontainer/devcontainer.json`, `.devcontainer.json`, and
 * `.devcontainer/<name>/devcontainer.json`. Each candidate has a name for
 * `shed create --devcontainer NAME`: its folder's name, or its path.
 */
export interface DevcontainerCandidate {
  name: string;
  /** Relative to the repository root, with / separators. */
  path: string;
}

export interface FoundDevcontainer {
  path: string;
  text: string;
}

export function findDevcontainers(root: string): DevcontainerCandidate[] {
  const found: DevcontainerCandidate[] = [];
  if (isFile(join(root, ".devcontainer", "devcontainer.json")))
    found.push({ name: ".devcontainer", path: ".devcontainer/devcontainer.json" });
  if (isFile(join(root, ".devcontainer.json"))) found.push({ name: ".devcontainer.json", path: ".devcontainer.json" });
  let entries: string[] = [];
  try {
    entries = readdirSync(join(root, ".devcontainer")).sort();
  } catch {
    // No .devcontainer folder.
  }
  for (const e of entries) {
    const path = `.devcontainer/${e}/devcontainer.json`;
    if (isFile(join(root, path))) found.push({ name: e, path });
  }
  return found;
}

/**
 * The devcontainer.json to use: the only one, or the one `wanted` names.
 * Several without a name is an error that lists them.
 */
export function pickDevcontainer(root: string, wanted?: string): FoundDevcontainer | undefined {
  const all = findDevcontainers(root);
  const names = all.map((c) => `${c.name} (${c.path})`).join(", ");
  if (wanted !== undefined) {
    const hit = all.find((c) => c.name === wanted || c.path === wanted);
    if (!hit) {
      throw new ShedError(
        "INVALID_REQUEST",
        `--devcontainer ${JSON.stringify(wanted)}: no such devcontainer.json in ${root}`,
        {
          hint: all.length ? `pick one of: ${names}` : "the repository has no devcontainer.json",
        },
      );
    }
    return { path: hit.path, text: readSmall(join(root, hit.path), hit.path) };
  }
  if (all.length === 0) return undefined;
  if (all.length > 1) {
    throw new ShedError("INVALID_REQUEST", `${root} has ${all.length} devcontainer.json files: ${names}`, {
      hint: `pick one with --devcontainer NAME, e.g. --devcontainer ${all[0]?.name}`,
    });
  }
  const only = all[0] as DevcontainerCandidate;
  return { path: only.path, text: readSmall(join(root, only.path), only.path) };
}

function isFile(p: string): boolean {
  try {
    return lstatSync(p).isFile();
  } catch {
    return false;
  }
}

/** At most DEVCONTAINER_MAX_BYTES + 1 bytes are read: the parser reports a larger file. */
function readSmall(file: string, shown: string): string {
  const fd = openSync(file, "r");
  try {
    if (!fstatSync(fd).isFile()) throw new ShedError("INVALID_REQUEST", `${shown} is not a regular file`);
    const buf = Buffer.alloc(DEVCONTAINER_MAX_BYTES + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n).toString("utf8");
  } finally {
    closeSync(fd);
  }
}
