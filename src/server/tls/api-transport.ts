import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { ServerConfig } from "../../config/server-config.js";
import { writeFileAtomic } from "../../core/atomic-file.js";
import { certFingerprint } from "../../core/cert-fingerprint.js";
import { ShedError } from "../../core/errors.js";
import { makeSelfSignedCert } from "./self-signed-cert.js";

/** How the API is served: TLS with a certificate, or plain HTTP (on loopback, or explicitly insecure). */
export type ApiTransport =
  | { kind: "tls"; cert: string; key: string; fingerprint: string; selfSigned: boolean }
  | { kind: "http"; warning?: string };

/** Addresses only this machine can reach. */
export function isLoopbackBind(bind: string): boolean {
  return bind === "localhost" || bind === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bind);
}

/**
 * Off loopback the API speaks TLS: the configured certificate, or a
 * self-signed one made once in data_dir/tls. Plain HTTP there only with
 * `insecure_http: true`, and then with a warning at every start. A configured
 * certificate is used on loopback too.
 */
export function apiTransport(config: ServerConfig): ApiTransport {
  if (config.tls) return tlsFrom(readPem(config.tls.cert, "tls_cert"), readPem(config.tls.key, "tls_key"), false);
  if (isLoopbackBind(config.bind)) return { kind: "http" };
  if (config.insecureHttp) {
    return {
      kind: "http",
      warning: `the API is plain HTTP on ${config.bind} (insecure_http: true): anyone on the network path can read the API token and take over this server; remove insecure_http to serve TLS`,
    };
  }
  const dir = join(config.dataDir, "tls");
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = makeSelfSignedCert(`shed-server ${config.name}`, ["localhost", hostname(), "127.0.0.1", "::1"]);
    // Key first: a crash between the two leaves no certificate without its key.
    writeFileAtomic(keyFile, pair.key, 0o600);
    writeFileAtomic(certFile, pair.cert, 0o644);
  }
  return tlsFrom(readPem(certFile, "certificate"), readPem(keyFile, "key"), true);
}

function tlsFrom(cert: string, key: string, selfSigned: boolean): ApiTransport {
  let fingerprint: string;
  try {
    fingerprint = certFingerprint(cert);
  } catch (err) {
    throw new ShedError("INVALID_CONFIG", `the API's TLS certificate does not parse: ${(err as Error).message}`, {
      hint: "tls_cert must be a PEM certificate (the first one in the file is served first)",
    });
  }
  return { kind: "tls", cert, key, fingerprint, selfSigned };
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ShedError("INVALID_CONFIG", `cannot read the ${what} ${file}: ${(err as Error).message}`, {
      hint: "check tls_cert and tls_key in the server config",
      cause: err,
    });
  }
}
