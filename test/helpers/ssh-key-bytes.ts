/**
 * Byte-level access to OpenSSH Ed25519 key files for tests: the raw public key,
 * and deliberately damaged files built the way ssh2 1.17's generator builds them.
 * Written independently of src/core/ssh-keygen.ts (which refuses such keys).
 */

/** The 32 raw bytes of "ssh-ed25519 AAAA..." (the blob is string type, string key). */
export function rawPublicKey(publicKey: string): Buffer {
  const blob = Buffer.from(publicKey.split(" ")[1] ?? "", "base64");
  return blob.subarray(4 + 11 + 4);
}

interface KeyParts {
  check: number;
  seed: Buffer;
  pub: Buffer;
  comment: string;
}

/** Reads a well-formed unencrypted Ed25519 file (fixed offsets: 98 is where the private section starts). */
function readParts(text: string): KeyParts {
  const blob = Buffer.from(text.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  const s = 98;
  const commentLen = blob.readUInt32BE(s + 127);
  return {
    check: blob.readUInt32BE(s),
    seed: blob.subarray(s + 63, s + 95),
    pub: blob.subarray(s + 95, s + 127),
    comment: blob.subarray(s + 131, s + 131 + commentLen).toString("utf8"),
  };
}

function str(data: string | Buffer): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([len, bytes]);
}

/**
 * Rebuilds `text` with a changed public key, lengths left as they fall (as
 * ssh2 does): `dropLeadingZero` strips the key's leading 0x00 bytes (ssh2's
 * defect); `publicFrom` puts in the public key of another key file.
 */
export function sshStyleKeyFile(text: string, change: { dropLeadingZero?: boolean; publicFrom?: string }): string {
  const parts = readParts(text);
  let pub = parts.pub;
  if (change.dropLeadingZero) {
    let i = 0;
    while (i < pub.length && pub[i] === 0) i++;
    pub = pub.subarray(i);
  }
  if (change.publicFrom) pub = readParts(change.publicFrom).pub;
  const check = Buffer.alloc(4);
  check.writeUInt32BE(parts.check, 0);
  const pubBlob = Buffer.concat([str("ssh-ed25519"), str(pub)]);
  let section = Buffer.concat([
    check,
    check,
    str("ssh-ed25519"),
    str(pub),
    str(Buffer.concat([parts.seed, pub])),
    str(parts.comment),
  ]);
  const pad = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const nkeys = Buffer.alloc(4);
  nkeys.writeUInt32BE(1, 0);
  const blob = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "latin1"),
    str("none"),
    str("none"),
    str(""),
    nkeys,
    str(pubBlob),
    str(section),
  ]);
  const body = blob.toString("base64").replace(/(.{70})/g, "$1\n");
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.trimEnd()}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
