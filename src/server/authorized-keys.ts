import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import ssh2, { type ParsedKey } from "ssh2";
import { ShedError } from "../core/errors.js";

const { utils } = ssh2;

/**
 * The file of OpenSSH public keys allowed to connect (ssh_authorized_keys).
 * It is read on every authentication, so keys added by hand or through the API
 * work at once; lines that are not keys are ignored.
 */
export class AuthorizedKeys {
  constructor(readonly file: string) {}

  keys(): ParsedKey[] {
    let text = "";
    try {
      text = readFileSync(this.file, "utf8");
    } catch {
      return [];
    }
    const out: ParsedKey[] = [];
    for (const line of text.split("\n")) {
      const trimmed = line.trim();
      if (trimmed === "" || trimmed.startsWith("#")) continue;
      const parsed = utils.parseKey(keyPart(trimmed));
      if (parsed instanceof Error) continue;
      out.push(...(Array.isArray(parsed) ? parsed : [parsed]));
    }
    return out;
  }

  allows(algo: string, data: Buffer): ParsedKey | undefined {
    return this.keys().find((k) => k.type === algo && k.getPublicSSH().equals(data));
  }

  /** Adds a public key (once). Returns false when it was already listed. */
  add(publicKey: string): boolean {
    const line = publicKey.trim().split("\n")[0] ?? "";
    const parsed = utils.parseKey(keyPart(line));
    if (parsed instanceof Error || Array.isArray(parsed) || parsed.isPrivateKey()) {
      throw new ShedError("INVALID_REQUEST", "public_key is not an OpenSSH public key", {
        hint: "send one line such as `ssh-ed25519 AAAA... comment`",
      });
    }
    if (this.allows(parsed.type, parsed.getPublicSSH())) return false;
    mkdirSync(dirname(this.file), { recursive: true });
    const prefix = existsSync(this.file) && !readFileSync(this.file, "utf8").endsWith("\n") ? "\n" : "";
    appendFileSync(this.file, `${prefix}${line}\n`, { mode: 0o600 });
    return true;
  }
}

/** An authorized_keys line may start with options; the key is "type base64 [comment]". */
function keyPart(line: string): string {
  const m = /(?:^|\s)((?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+\s+[A-Za-z0-9+/=]+)/.exec(line);
  return m?.[1] ?? line;
}
