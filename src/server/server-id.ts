import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic-file.js";
import { ShedError } from "../core/errors.js";

const ID = /^[0-9a-f]{32}$/;

/** Where a data dir keeps its server id. */
export function serverIdFile(dataDir: string): string {
  return join(dataDir, "server_id");
}

/**
 * This server's id: made once (16 random bytes, hex) and kept in data_dir, so
 * it survives restarts and upgrades. Every Docker object the server makes is
 * labelled with it, and a server acts only on objects that carry its own id:
 * two servers on one engine never see or touch each other's sheds. It is not
 * a secret (anyone with Docker access reads it from the labels).
 */
export function loadOrCreateServerId(dataDir: string): string {
  const file = serverIdFile(dataDir);
  let text: string | undefined;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ShedError("INVALID_CONFIG", `cannot read the server id in ${file}: ${(err as Error).message}`, {
        hint: "check the permissions of data_dir",
        cause: err,
      });
    }
  }
  if (text !== undefined) {
    const id = text.trim();
    if (ID.test(id)) return id;
    // Never replace it silently: a new id would orphan every shed this server made.
    throw new ShedError("INVALID_CONFIG", `${file} does not hold a server id (32 lowercase hex digits)`, {
      hint: "restore it from a backup, or copy the value of the dev.shed.server-id label from one of this server's containers (docker inspect shed-NAME)",
    });
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const id = randomBytes(16).toString("hex");
  writeFileAtomic(file, `${id}\n`, 0o644);
  return id;
}
