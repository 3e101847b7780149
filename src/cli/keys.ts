import { existsSync, readFileSync, renameSync } from "node:fs";
import { writeFileAtomic } from "../core/atomic-file.js";
import { generateEd25519KeyPair, parseEd25519PrivateKey } from "../core/ssh-keygen.js";
import type { ClientConfig } from "./client-config.js";

/**
 * The CLI's own key pair, made on first use beside the client config. Returns
 * the public key line (with its comment), which `shed server add` registers.
 *
 * The private file is the truth: it is written last (atomically), so a crash
 * leaves either no private key, and a new pair is made next time, or a whole
 * one, and the .pub file is rewritten from it whenever it is missing or differs.
 *
 * A private key that is not a whole Ed25519 key (earlier versions used ssh2's
 * generator, which truncates 1 key in 256) is replaced rather than reported:
 * such a key never worked anywhere, nothing else trusts it, and the caller
 * registers the new public key with the server right away. The old file is
 * kept as id_ed25519.broken so nothing is destroyed.
 */
export async function ensureKeyPair(cfg: ClientConfig): Promise<string> {
  const pubFile = `${cfg.keyFile}.pub`;
  const existing = readUsableKey(cfg.keyFile);
  if (existing) {
    const pubText = existsSync(pubFile) ? readFileSync(pubFile, "utf8") : "";
    if (pubText.trim() !== existing) writeFileAtomic(pubFile, `${existing}\n`, 0o644);
    return existing;
  }
  cfg.ensureDir();
  if (existsSync(cfg.keyFile)) renameSync(cfg.keyFile, `${cfg.keyFile}.broken`);
  const pair = generateEd25519KeyPair("shed-cli");
  writeFileAtomic(pubFile, `${pair.publicLine}\n`, 0o644);
  writeFileAtomic(cfg.keyFile, pair.privateKey, 0o600);
  return pair.publicLine;
}

/** The public line of the key in `file`, or undefined when there is none or it is not usable. */
function readUsableKey(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return parseEd25519PrivateKey(readFileSync(file, "utf8")).publicLine;
  } catch {
    return undefined;
  }
}
