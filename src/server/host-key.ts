import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import ssh2 from "ssh2";
import { writeFileAtomic } from "../core/atomic-file.js";
import { ShedError } from "../core/errors.js";
import { generateEd25519KeyPair, parseEd25519PrivateKey } from "../core/ssh-keygen.js";

const { utils } = ssh2;

export interface HostKey {
  /** OpenSSH private key, for the SSH server. */
  private: string;
  /** "ssh-ed25519 AAAA...", published by /api/info and pinned by the CLI. */
  public: string;
}

/**
 * The server's SSH host key, made once and kept in data_dir (0600).
 *
 * The private file is what counts: it is written last, so a crash between the
 * two writes leaves no private key and the next start makes a fresh pair; the
 * .pub file is only a copy for humans and is rewritten from the private key
 * when it is missing or differs.
 *
 * A private key that exists but is unusable (e.g. the 1-in-256 truncated key
 * that ssh2's own generator made in earlier versions) is an error, not
 * replaced: a new host key would silently change the key every client pinned,
 * and that must be the operator's decision.
 */
export function loadOrCreateHostKey(file: string): HostKey {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const pair = generateEd25519KeyPair("shed-server");
    writeFileAtomic(`${file}.pub`, `${pair.publicLine}\n`, 0o644);
    writeFileAtomic(file, pair.privateKey, 0o600);
  }
  const priv = readFileSync(file, "utf8");
  let key: ReturnType<typeof parseEd25519PrivateKey>;
  try {
    key = parseEd25519PrivateKey(priv);
    // The SSH server loads it with ssh2: a key it cannot parse is no host key either.
    const parsed = utils.parseKey(priv);
    if (parsed instanceof Error) throw parsed;
  } catch (err) {
    throw unusableHostKey(file, err);
  }
  const pubFile = `${file}.pub`;
  const pubText = existsSync(pubFile) ? readFileSync(pubFile, "utf8") : "";
  if (pubText.trim() !== key.publicLine) writeFileAtomic(pubFile, `${key.publicLine}\n`, 0o644);
  return { private: priv, public: key.publicKey };
}

function unusableHostKey(file: string, err: unknown): ShedError {
  const reason = err instanceof Error ? err.message : String(err);
  return new ShedError("INVALID_CONFIG", `the SSH host key ${file} is not usable: ${reason}`, {
    hint:
      `move it away (mv ${file} ${file}.broken) and start again: a new host key is made; ` +
      "clients then run `shed server add` again to pin the new key",
    details: { file },
    cause: err,
  });
}
