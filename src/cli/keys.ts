import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { ClientConfig } from "./client-config.js";

/** The CLI's own key pair, made on first use beside the client config. Returns the public key line. */
export async function ensureKeyPair(cfg: ClientConfig): Promise<string> {
  const pubFile = `${cfg.keyFile}.pub`;
  if (!existsSync(cfg.keyFile) || !existsSync(pubFile)) {
    cfg.ensureDir();
    // Loaded only here: ssh2 is large and most commands never need it.
    const { default: ssh2 } = await import("ssh2");
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "shed-cli" });
    writeFileSync(cfg.keyFile, pair.private, { mode: 0o600 });
    writeFileSync(pubFile, `${pair.public}\n`, { mode: 0o644 });
  }
  return readFileSync(pubFile, "utf8").trim();
}
