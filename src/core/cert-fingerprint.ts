import { X509Certificate } from "node:crypto";
import { x509Fingerprint } from "./fingerprint-format.js";

/** A certificate's pin (fingerprint-format.ts), from the certificate or its PEM. */
export function certFingerprint(cert: string | X509Certificate): string {
  return x509Fingerprint(typeof cert === "string" ? new X509Certificate(cert) : cert);
}
