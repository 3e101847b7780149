import type { CliContext } from "../context.js";
import { remoteError, runInShed, writeAll } from "./remote.js";

/** What the shed has at a path: find's type letter (f, d, l, ...), size, mtime in whole seconds, permission bits. */
export interface RemoteEntry {
  type: string;
  size: number;
  mtimeSec: number;
  mode: number;
  /** A symlink's target ("" for anything else). */
  link: string;
}

/**
 * The home of the user the sync runs as (`$HOME\0`: user shed's, or a
 * devcontainer.json's remoteUser's), then one `find -printf` over exactly the
 * paths a sync would write (sent on stdin, NUL-separated, so any path is safe
 * and the listing never walks more than that). Each record is
 * `TYPE SIZE MTIME MODE\0PATH\0LINK\0`; paths that do not exist are simply
 * absent. A fixed argv: the paths are arguments xargs passes to the script,
 * never pasted into it.
 */
export const MANIFEST_ARGV: readonly string[] = [
  "sh",
  "-c",
  'printf \'%s\\0\' "$HOME"; exec xargs -0 -r sh -c "$1" shed-sync-manifest',
  "shed-sync-home",
  "find \"$@\" -maxdepth 0 -printf '%y %s %T@ %m\\0%p\\0%l\\0' 2>/dev/null; exit 0",
];

export interface Manifest {
  /** The home of the user the shed's commands run as. */
  home: string;
  entries: Map<string, RemoteEntry>;
}

export async function fetchManifest(ctx: CliContext, name: string, paths: readonly string[]): Promise<Manifest> {
  if (paths.length === 0) return { home: "", entries: new Map() };
  const res = await runInShed(ctx, name, [...MANIFEST_ARGV], {
    feed: async (stdin) => {
      // In slices, so a large listing is not one string in memory twice.
      for (let i = 0; i < paths.length; i += 1000) {
        await writeAll(
          stdin,
          Buffer.from(
            paths
              .slice(i, i + 1000)
              .map((p) => `${p}\0`)
              .join(""),
            "utf8",
          ),
        );
      }
    },
  });
  if (res.code !== 0) throw remoteError("listing the sync targets", name, res);
  const text = res.stdout.toString("utf8");
  const end = text.indexOf("\0");
  return { home: text.slice(0, end), entries: parseManifest(text.slice(end + 1)) };
}

export function parseManifest(text: string): Map<string, RemoteEntry> {
  const fields = text.split("\0");
  const out = new Map<string, RemoteEntry>();
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const [type = "", size = "0", mtime = "0", mode = "0"] = (fields[i] as string).split(" ");
    out.set(fields[i + 1] as string, {
      type,
      size: Number(size),
      // The whole seconds as written (a float would round 0.9999999999 up).
      mtimeSec: Number(mtime.split(".")[0]),
      mode: Number.parseInt(mode, 8) & 0o7777,
      link: fields[i + 2] as string,
    });
  }
  return out;
}
