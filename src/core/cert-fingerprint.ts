import { X509Certificate } from "node:crypto";

/**
 * How a TLS certificate is pinned: "sha256:" and its SHA-256 in lower-case
 * hex. The server prints it at start; the CLI stores it at `shed server add`
 * and compares on every connection.
 */
export function certFingerprint(cert: string | X509Certificate): string {
  const x = typeof cert === "string" ? new X509Certificate(cert) : cert;
  return `sha256:${x.fingerprint256.replaceAll(":", "").toLowerCase()}`;
}

export const FINGERPRINT_RE = /^sha256:[0-9a-f]{64}$/;
