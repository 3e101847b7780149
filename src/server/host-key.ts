import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import ssh2 from "ssh2";

const { utils } = ssh2;

export interface HostKey {
  /** OpenSSH private key, for the SSH server. */
  private: string;
  /** "ssh-ed25519 AAAA...", published by /api/info and pinned by the CLI. */
  public: string;
}

/** The server's SSH host key, made once and kept in data_dir (0600). */
export function loadOrCreateHostKey(file: string): HostKey {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const pair = utils.generateKeyPairSync("ed25519");
    writeFileSync(file, pair.private, { mode: 0o600 });
    writeFileSync(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
  }
  const priv = readFileSync(file, "utf8");
  const parsed = utils.parseKey(priv);
  if (parsed instanceof Error) throw parsed;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) throw new Error(`no key in ${file}`);
  const pub = `${key.type} ${key.getPublicSSH().toString("base64")}`;
  return { private: priv, public: pub };
}
