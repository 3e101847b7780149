import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Proof of the per-VM secret, for an agent reachable by other users of the host
 * (a forwarded TCP port). The agent's hello carries a fresh random nonce; the
 * host answers HMAC-SHA256(secret, label || nonce). The secret itself never
 * crosses the wire, and a recorded proof is useless on the next connection.
 */
const LABEL = "shed-agent-auth-v1\0";

export function newNonce(): string {
  return randomBytes(32).toString("hex");
}

export function proofFor(secret: Buffer, nonce: string): string {
  return createHmac("sha256", secret).update(LABEL).update(nonce, "utf8").digest("hex");
}

/** Constant-time check of a proof (a malformed proof is simply wrong). */
export function proofMatches(secret: Buffer, nonce: string, proof: string | undefined): boolean {
  if (proof === undefined || !/^[0-9a-f]{64}$/.test(proof)) return false;
  return timingSafeEqual(Buffer.from(proofFor(secret, nonce), "hex"), Buffer.from(proof, "hex"));
}
