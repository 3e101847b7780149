import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { ShedError } from "../core/errors.js";

/**
 * The user's own ~/.ssh/config ($HOME from the environment), read and written
 * as raw bytes: the text is held as latin1, one character per byte, so bytes
 * that are not UTF-8 survive unchanged. Shed's own text is converted with
 * `asBytes` before it is put in.
 */
export interface UserSshConfig {
  /** ~/.ssh/config as named. */
  file: string;
  /** Where the bytes live: the file, or the target when it is a symlink (dotfile managers). */
  target: string;
  exists: boolean;
  /** The file's content, one character per byte ("" when it does not exist). */
  bytes: string;
  /** Permission bits to keep (0600 for a new file). */
  mode: number;
}

export function userSshConfigFile(): string {
  return join(homedir(), ".ssh", "config");
}

/** UTF-8 text as a one-character-per-byte string, to sit beside the file's own bytes. */
export const asBytes = (text: string): string => Buffer.from(text, "utf8").toString("latin1");

export function readUserSshConfig(file = userSshConfigFile()): UserSshConfig {
  if (!existsSync(file)) {
    if (lstatExists(file)) {
      throw new ShedError("INVALID_CONFIG", `${file} is a symbolic link to a file that does not exist`, {
        hint: "create the file it points to, or remove the link",
      });
    }
    return { file, target: file, exists: false, bytes: "", mode: 0o600 };
  }
  const target = realpathSync(file);
  const st = statSync(target);
  if (!st.isFile()) {
    throw new ShedError("INVALID_CONFIG", `${file} is not a regular file`, { hint: "move it away and try again" });
  }
  return { file, target, exists: true, bytes: readFileSync(target, "latin1"), mode: st.mode & 0o7777 };
}

function lstatExists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Replaces the file atomically (a temp file beside it, then rename) with the
 * same permission bits; makes ~/.ssh (0700) when it does not exist.
 */
export function writeUserSshConfig(cfg: UserSshConfig, bytes: string): void {
  const dir = dirname(cfg.target);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.config.shed-${process.pid}.tmp`);
  try {
    writeFileSync(tmp, bytes, { encoding: "latin1", mode: cfg.mode });
    // The umask may have narrowed the mode at creation.
    chmodSync(tmp, cfg.mode);
    renameSync(tmp, cfg.target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new ShedError("INVALID_CONFIG", `cannot write ${cfg.file}: ${(err as Error).message}`, {
      hint: `check the permissions of ${dir}`,
      cause: err,
    });
  }
}
