import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";

/**
 * Ed25519 key pairs in OpenSSH format, made with node:crypto and encoded here.
 *
 * Why not ssh2's `utils.generateKeyPairSync("ed25519")`: ssh2 1.17 takes the
 * public key from the DER SubjectPublicKeyInfo, whose BIT STRING content is
 * one "unused bits" byte (0x00) followed by the 32 key bytes, and strips *all*
 * leading zero bytes instead of exactly that one. When the key's first byte is
 * itself 0x00 (1 key in 256) the key is cut to 31 bytes, and the files it
 * writes are rejected by ssh2's own parser ("Malformed OpenSSH private key")
 * and by OpenSSH (mscdex/ssh2 issues 1390 and 1513). Here the seed is ours and
 * the public key is the last 32 bytes of a DER SubjectPublicKeyInfo of fixed
 * length, and every length is checked before anything is written.
 */

const KEY_TYPE = "ssh-ed25519";
const MAGIC = Buffer.from("openssh-key-v1\0", "latin1");
const BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END = "-----END OPENSSH PRIVATE KEY-----";
/** Cipher "none" pads the private section to 8-byte blocks, as OpenSSH does. */
const BLOCK = 8;
/** ssh-keygen wraps the base64 body at 70 columns. */
const WRAP = 70;

export interface SshKeyPair {
  /** The private key file: unencrypted "-----BEGIN OPENSSH PRIVATE KEY-----". */
  privateKey: string;
  /** "ssh-ed25519 AAAA..." without a comment (what a server pins). */
  publicKey: string;
  /** The .pub file's line: publicKey followed by the comment, if any. */
  publicLine: string;
}

export interface ParsedSshPrivateKey {
  publicKey: string;
  publicLine: string;
  comment: string;
}

/** PKCS#8 for an Ed25519 private key, up to its 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** SubjectPublicKeyInfo of an Ed25519 public key: this prefix, then the 32 key bytes (RFC 8410). */
const SPKI_ED25519_LENGTH = 44;

/**
 * A fresh Ed25519 key pair; `comment` goes into both files, as with ssh-keygen -C.
 *
 * The seed is 32 random bytes (RFC 8032: any 32 bytes are a private key), and node:crypto derives
 * the public half from a key it imports. Not generateKeyPairSync + export: on Node 20 exporting a
 * generated key can deadlock the process for good. The export holds the key's mutex while it
 * allocates; a garbage collection then may destroy the finished key-generation job, whose
 * destructor takes the same mutex (seen in CI: the main thread parked in ~KeyGenJob under
 * ExportJWKEdKey). An imported key has no such job.
 */
export function generateEd25519KeyPair(comment = ""): SshKeyPair {
  const seed = randomBytes(32);
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  if (spki.length !== SPKI_ED25519_LENGTH) {
    throw new Error(
      `node:crypto gave an Ed25519 public key of ${spki.length} bytes of DER, not ${SPKI_ED25519_LENGTH}`,
    );
  }
  return encodeEd25519KeyPair(seed, spki.subarray(SPKI_ED25519_LENGTH - 32), comment);
}

/** Encodes a 32-byte seed and its 32-byte public key; exported for tests with chosen keys. */
export function encodeEd25519KeyPair(seed: Buffer, pub: Buffer, comment = "", checkInt?: number): SshKeyPair {
  if (seed.length !== 32 || pub.length !== 32) {
    throw new Error(`an Ed25519 key needs a 32-byte seed and public key (got ${seed.length} and ${pub.length})`);
  }
  const pubBlob = publicBlob(pub);
  const check = checkInt ?? randomBytes(4).readUInt32BE(0);
  const body = [uint32(check), uint32(check), sshString(KEY_TYPE), sshString(pub)];
  body.push(sshString(Buffer.concat([seed, pub])), sshString(comment));
  let section = Buffer.concat(body);
  const padLen = (BLOCK - (section.length % BLOCK)) % BLOCK;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: padLen }, (_, i) => i + 1))]);
  const blob = Buffer.concat([
    MAGIC,
    sshString("none"), // cipher
    sshString("none"), // kdf
    sshString(""), // kdf options
    uint32(1), // number of keys
    sshString(pubBlob),
    sshString(section),
  ]);
  const b64 = blob.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += WRAP) lines.push(b64.slice(i, i + WRAP));
  const publicKey = `${KEY_TYPE} ${pubBlob.toString("base64")}`;
  return {
    privateKey: `${BEGIN}\n${lines.join("\n")}\n${END}\n`,
    publicKey,
    publicLine: comment ? `${publicKey} ${comment}` : publicKey,
  };
}

/**
 * Reads an unencrypted OpenSSH Ed25519 private key and checks it is whole:
 * every length, the check ints, the padding, and that the seed really yields
 * the public key it carries (which a truncated key from ssh2 fails).
 * Throws an Error whose message says what is wrong (never any key bytes).
 */
export function parseEd25519PrivateKey(text: string): ParsedSshPrivateKey {
  const trimmed = text.trim();
  const body = trimmed.slice(BEGIN.length, trimmed.length - END.length).replace(/\s+/g, "");
  if (!trimmed.startsWith(BEGIN) || !trimmed.endsWith(END) || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
    throw new Error("not an OpenSSH private key file");
  }
  const r = new Reader(Buffer.from(body, "base64"));
  if (!r.bytes(MAGIC.length).equals(MAGIC)) throw new Error("not an openssh-key-v1 key");
  const cipher = r.string().toString("latin1");
  const kdf = r.string().toString("latin1");
  r.string(); // kdf options
  if (cipher !== "none" || kdf !== "none") throw new Error("the key is encrypted with a passphrase");
  if (r.uint32() !== 1) throw new Error("the file must hold exactly one key");
  const outerPub = r.string();
  const section = new Reader(r.string());
  r.end();
  const check1 = section.uint32();
  const check2 = section.uint32();
  if (check1 !== check2) throw new Error("its check ints differ (corrupt key)");
  const type = section.string().toString("latin1");
  if (type !== KEY_TYPE) throw new Error(`it is a ${type} key, not ${KEY_TYPE}`);
  const pub = section.string();
  const secret = section.string();
  const comment = section.string().toString("utf8");
  if (pub.length !== 32) throw new Error(`its public key is ${pub.length} bytes, not 32 (truncated key)`);
  if (secret.length !== 64) throw new Error(`its private key is ${secret.length} bytes, not 64`);
  if (!outerPub.equals(publicBlob(pub)) || !secret.subarray(32).equals(pub)) {
    throw new Error("its public key copies disagree");
  }
  const padding = section.rest();
  if (padding.length >= BLOCK || !padding.every((b, i) => b === i + 1)) throw new Error("its padding is wrong");
  if (derivePublic(secret.subarray(0, 32), pub) !== pub.toString("base64url")) {
    throw new Error("its private key does not match its public key");
  }
  const publicKey = `${KEY_TYPE} ${publicBlob(pub).toString("base64")}`;
  return { publicKey, publicLine: comment ? `${publicKey} ${comment}` : publicKey, comment };
}

/**
 * The public key (base64url) that node:crypto computes from a seed. A JWK
 * import is used because a DER import costs ~10x more. The JWK needs an `x`:
 * the claimed one is passed, node derives the public half from `d` alone, and
 * if a node version checks `x` instead, a mismatch throws, which reads as a
 * mismatch here too.
 */
function derivePublic(seed: Buffer, claimed: Buffer): string | undefined {
  const jwk = { kty: "OKP", crv: "Ed25519", d: seed.toString("base64url"), x: claimed.toString("base64url") };
  try {
    const key = createPrivateKey({ key: jwk, format: "jwk" });
    return createPublicKey(key).export({ format: "jwk" }).x;
  } catch {
    return undefined;
  }
}

function publicBlob(pub: Buffer): Buffer {
  return Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** SSH wire "string": uint32 length, then the bytes (RFC 4251 §5). */
function sshString(data: string | Buffer): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return Buffer.concat([uint32(bytes.length), bytes]);
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new Error("it is cut short (truncated key)");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.uint32());
  }
  rest(): Buffer {
    return this.bytes(this.buf.length - this.pos);
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new Error("it has trailing bytes");
  }
}
