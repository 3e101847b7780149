import type { X509Certificate } from "node:crypto";

/**
 * How a TLS certificate is pinned: "sha256:" and its SHA-256 in lower-case
 * hex. The server prints it at start; the CLI stores it at `shed server add`
 * and compares on every connection. Apart from cert-fingerprint.ts, which
 * parses PEM, so that the CLI does not load node:crypto (6 to 11 ms of its
 * start-up) to format a certificate it already holds.
 */
export function x509Fingerprint(cert: X509Certificate): string {
  return `sha256:${cert.fingerprint256.replaceAll(":", "").toLowerCase()}`;
}

export const FINGERPRINT_RE = /^sha256:[0-9a-f]{64}$/;
