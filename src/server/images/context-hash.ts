import { createHash } from "node:crypto";
import { posix } from "node:path";
import { t as listTar } from "tar";
import { ShedError } from "../../core/errors.js";

export interface ContextSummary {
  /** sha256 of the entries (path, type, mode, link target, content), in the tar's order-free form. */
  hash: string;
  files: number;
}

/**
 * The content hash of an uploaded build context: the key of `shed image build`'s cache. It is taken
 * over the entries, not the tar's bytes, so that the same files give the same hash whoever made the
 * tar and whenever (a tar records mtimes and owners, which a build does not depend on). The
 * Dockerfile must be one of the entries: a build that cannot start is refused before the engine
 * is asked.
 */
export async function summarizeContext(file: string, dockerfile: string): Promise<ContextSummary> {
  const entries: string[] = [];
  let found = false;
  const wanted = posix.normalize(dockerfile).replace(/^(\.\/)+/, "");
  try {
    await listTar({
      file,
      onReadEntry: (entry) => {
        const path = posix.normalize(entry.path).replace(/^(\.\/)+/, "");
        if (path === wanted && entry.type === "File") found = true;
        const content = createHash("sha256");
        entry.on("data", (chunk: Buffer) => content.update(chunk));
        entry.on("end", () => {
          entries.push(
            JSON.stringify([path, entry.type, (entry.mode ?? 0) & 0o7777, entry.linkpath ?? "", content.digest("hex")]),
          );
        });
      },
    });
  } catch (err) {
    throw new ShedError("INVALID_REQUEST", `the build context upload is not a tar archive: ${(err as Error).message}`, {
      hint: "upload a tar of the context directory (shed image build does this)",
    });
  }
  if (!found) {
    throw new ShedError("INVALID_REQUEST", `the build context has no file ${JSON.stringify(dockerfile)}`, {
      hint: "name the Dockerfile with --file, relative to the context directory",
    });
  }
  entries.sort();
  const hash = createHash("sha256");
  hash.update(`${wanted}\n`);
  for (const e of entries) hash.update(`${e}\n`);
  return { hash: hash.digest("hex"), files: entries.length };
}
