import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "./atomic-file.js";
import { ShedError } from "./errors.js";

/**
 * The API token: whoever holds it can drive shed-server (and so run code as
 * root in sheds and mount host folders). One per data_dir, made on first use,
 * mode 0600. Both programs know the file: the server checks requests against
 * it, and the CLI reads it for the local server it starts itself.
 */
export const API_TOKEN_FILE = "api_token";

export const apiTokenPath = (dataDir: string): string => join(dataDir, API_TOKEN_FILE);

/** 32 random bytes, URL-safe: fits an HTTP header and a YAML scalar without quoting. */
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

export function isWellFormedToken(token: string): boolean {
  return TOKEN_RE.test(token);
}

export function loadOrCreateApiToken(dataDir: string): string {
  const file = apiTokenPath(dataDir);
  const existing = readApiToken(file);
  if (existing !== undefined) return existing;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("base64url");
  writeFileAtomic(file, `${token}\n`, 0o600);
  return token;
}

/** The token in `file`, or undefined when there is none yet; a damaged or readable-by-others file is an error. */
export function readApiToken(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ShedError("INVALID_CONFIG", `cannot read the API token ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const token = text.trim();
  if (!isWellFormedToken(token)) {
    throw new ShedError("INVALID_CONFIG", `${file} does not hold an API token`, {
      hint: `remove ${file} and start shed-server again: it makes a new token (clients then need it again)`,
    });
  }
  if ((statSync(file).mode & 0o077) !== 0) {
    throw new ShedError("INVALID_CONFIG", `${file} can be read by other users`, {
      hint: `chmod 600 ${file}, and make a new token if someone else may have read it (remove the file and restart)`,
    });
  }
  return token;
}
