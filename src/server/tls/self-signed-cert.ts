import { createECDH, createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign } from "node:crypto";
import { isIP } from "node:net";

/**
 * A self-signed X.509 certificate (ECDSA P-256, SHA-256) for the API off
 * loopback, written out in DER by hand: node:crypto signs but cannot build a
 * certificate, and a few dozen lines of ASN.1 beat a dependency tree for it.
 * Clients pin the certificate's fingerprint on first contact (`shed server
 * add`), so no CA is involved; the names are there for other tools.
 */
export interface CertPair {
  cert: string;
  key: string;
}

/**
 * A P-256 key pair made by ECDH and imported, not by generateKeyPairSync: on Node 20 exporting a
 * generated key can deadlock the process for good (the export holds the key's mutex while it
 * allocates, and a garbage collection then may destroy the finished generation job, which takes
 * the same mutex). An imported key has no such job. See core/ssh-keygen.ts.
 */
function p256KeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  const ecdh = createECDH("prime256v1");
  const point = ecdh.generateKeys(); // uncompressed: 0x04, x (32 bytes), y (32 bytes)
  const privateKey = createPrivateKey({
    key: {
      kty: "EC",
      crv: "P-256",
      // The scalar as a big-endian number may have leading zeros left out; JWK wants all 32 bytes.
      d: Buffer.concat([Buffer.alloc(32), ecdh.getPrivateKey()])
        .subarray(-32)
        .toString("base64url"),
      x: point.subarray(1, 33).toString("base64url"),
      y: point.subarray(33, 65).toString("base64url"),
    },
    format: "jwk",
  });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

export function makeSelfSignedCert(commonName: string, altNames: readonly string[], now = new Date()): CertPair {
  const { privateKey, publicKey } = p256KeyPair();
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + 10);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // positive INTEGER
  const ecdsaWithSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const name = seq(set(seq(oid("2.5.4.3"), tlv(0x0c, Buffer.from(commonName, "utf8")))));
  const sanNames = altNames.map((n) => {
    const v = isIP(n);
    if (v === 4) return tlv(0x87, Buffer.from(n.split(".").map(Number)));
    if (v === 6) return tlv(0x87, ipv6Bytes(n));
    return tlv(0x82, Buffer.from(n, "ascii"));
  });
  const extensions = tlv(0xa3, seq(seq(oid("2.5.29.17"), tlv(0x04, seq(...sanNames)))));
  const tbs = seq(
    tlv(0xa0, derInteger(Buffer.from([2]))), // v3
    derInteger(serial),
    ecdsaWithSha256,
    name,
    seq(time(now), time(notAfter)),
    name,
    publicKey.export({ type: "spki", format: "der" }),
    extensions,
  );
  const signature = sign("sha256", tbs, privateKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return {
    cert: pem("CERTIFICATE", der),
    key: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
  };
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));

/**
 * A non-negative DER INTEGER: minimal, so without leading zero octets, plus one zero octet when the
 * top bit is set. (A random serial whose first octet came out 0 was "illegal padding" to OpenSSL:
 * about one certificate in 256 could not be loaded.)
 */
export function derInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const value = bytes.subarray(start);
  return tlv(0x02, (value[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const out = [a * 40 + b];
  for (const v of rest) {
    const chunk = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, "ascii"))
    : tlv(0x18, Buffer.from(`${iso}Z`, "ascii"));
}

function ipv6Bytes(ip: string): Buffer {
  const [head = "", tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = ip.includes("::") && tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return Buffer.from(groups.flatMap((g) => [(Number.parseInt(g, 16) >> 8) & 0xff, Number.parseInt(g, 16) & 0xff]));
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}
