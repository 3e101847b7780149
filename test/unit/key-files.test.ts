import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import { ClientConfig } from "../../src/cli/client-config.js";
import { ensureKeyPair } from "../../src/cli/keys.js";
import { ShedError } from "../../src/core/errors.js";
import { generateEd25519KeyPair } from "../../src/core/ssh-keygen.js";
import { loadOrCreateHostKey } from "../../src/server/host-key.js";
import { tempDir } from "../helpers/cli.js";
import { rawPublicKey, sshStyleKeyFile } from "../helpers/ssh-key-bytes.js";

const { utils } = ssh2;

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

function errorOf(fn: () => unknown): ShedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error("expected an error");
}

/** A key as ssh2 1.17's generator wrote it when the public key started with 0x00. */
function truncatedKey(): string {
  for (;;) {
    const pair = generateEd25519KeyPair("");
    if (rawPublicKey(pair.publicKey)[0] === 0) return sshStyleKeyFile(pair.privateKey, { dropLeadingZero: true });
  }
}

describe("server host key", () => {
  it("is made once (0600, .pub 0644), then reused unchanged", () => {
    const file = join(tempDir("hostkey"), "data", "ssh_host_ed25519_key");
    const first = loadOrCreateHostKey(file);
    expect(mode(file)).toBe(0o600);
    expect(mode(`${file}.pub`)).toBe(0o644);
    expect(first.public).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    expect(readFileSync(`${file}.pub`, "utf8")).toBe(`${first.public} shed-server\n`);
    const key = utils.parseKey(first.private);
    if (key instanceof Error || Array.isArray(key)) throw new Error("ssh2 cannot read the host key");
    expect(`${key.type} ${key.getPublicSSH().toString("base64")}`).toBe(first.public);
    const out = execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" });
    expect(out.trim()).toBe(`${first.public} shed-server`);

    const second = loadOrCreateHostKey(file);
    expect(second).toEqual(first);
    expect(readFileSync(file, "utf8")).toBe(first.private);
  });

  it("keeps a key made by ssh2 in an earlier version, so clients' pins stay valid", () => {
    const file = join(tempDir("hostkey"), "ssh_host_ed25519_key");
    let old = utils.generateKeyPairSync("ed25519");
    while (utils.parseKey(old.private) instanceof Error) old = utils.generateKeyPairSync("ed25519");
    writeFileSync(file, old.private, { mode: 0o600 });
    writeFileSync(`${file}.pub`, `${old.public}\n`, { mode: 0o644 });
    expect(loadOrCreateHostKey(file).public).toBe(old.public.trim());
  });

  it("a crash between the two writes (a .pub but no private key) gives a new whole pair", () => {
    const file = join(tempDir("hostkey"), "ssh_host_ed25519_key");
    const stale = generateEd25519KeyPair("stale");
    writeFileSync(`${file}.pub`, `${stale.publicLine}\n`);
    const key = loadOrCreateHostKey(file);
    expect(key.public).not.toBe(stale.publicKey);
    expect(readFileSync(`${file}.pub`, "utf8")).toBe(`${key.public} shed-server\n`);
    // And a lost .pub is written again from the private key, which is the truth.
    rmSync(`${file}.pub`);
    expect(loadOrCreateHostKey(file)).toEqual(key);
    expect(readFileSync(`${file}.pub`, "utf8")).toBe(`${key.public} shed-server\n`);
  });

  it("an unusable private key is a clear error naming the file, and is left alone", () => {
    const file = join(tempDir("hostkey"), "ssh_host_ed25519_key");
    const broken = truncatedKey();
    writeFileSync(file, broken, { mode: 0o600 });
    const err = errorOf(() => loadOrCreateHostKey(file));
    expect(err.code).toBe("INVALID_CONFIG");
    expect(err.message).toContain(file);
    expect(err.message).toContain("31 bytes, not 32");
    expect(err.hint).toContain(`mv ${file} ${file}.broken`);
    expect(readFileSync(file, "utf8")).toBe(broken);

    writeFileSync(file, "not a key\n");
    expect(errorOf(() => loadOrCreateHostKey(file)).message).toContain("not an OpenSSH private key");
  });
});

describe("CLI key pair", () => {
  function config(): ClientConfig {
    return ClientConfig.load(join(tempDir("clikey"), "shed", "config.yaml"));
  }

  it("is made once (0600, .pub 0644), then reused unchanged", async () => {
    const cfg = config();
    const line = await ensureKeyPair(cfg);
    expect(line).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+ shed-cli$/);
    expect(mode(cfg.keyFile)).toBe(0o600);
    expect(mode(`${cfg.keyFile}.pub`)).toBe(0o644);
    expect(readFileSync(`${cfg.keyFile}.pub`, "utf8")).toBe(`${line}\n`);
    expect(execFileSync("ssh-keygen", ["-y", "-f", cfg.keyFile], { encoding: "utf8" }).trim()).toBe(line);
    const priv = readFileSync(cfg.keyFile, "utf8");
    expect(await ensureKeyPair(cfg)).toBe(line);
    expect(readFileSync(cfg.keyFile, "utf8")).toBe(priv);
  });

  it("a .pub left without its private key (crash) or a lost .pub is repaired", async () => {
    const cfg = config();
    cfg.ensureDir();
    const stale = generateEd25519KeyPair("stale").publicLine;
    writeFileSync(`${cfg.keyFile}.pub`, `${stale}\n`);
    const line = await ensureKeyPair(cfg);
    expect(line).not.toBe(stale);
    expect(readFileSync(`${cfg.keyFile}.pub`, "utf8")).toBe(`${line}\n`);
    rmSync(`${cfg.keyFile}.pub`);
    expect(await ensureKeyPair(cfg)).toBe(line);
    expect(readFileSync(`${cfg.keyFile}.pub`, "utf8")).toBe(`${line}\n`);
  });

  it("a truncated key from an earlier version is replaced by a working one and kept aside", async () => {
    const cfg = config();
    cfg.ensureDir();
    const broken = truncatedKey();
    writeFileSync(cfg.keyFile, broken, { mode: 0o600 });
    writeFileSync(`${cfg.keyFile}.pub`, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAHw== \n");
    const line = await ensureKeyPair(cfg);
    expect(utils.parseKey(readFileSync(cfg.keyFile, "utf8"))).not.toBeInstanceOf(Error);
    expect(execFileSync("ssh-keygen", ["-y", "-f", cfg.keyFile], { encoding: "utf8" }).trim()).toBe(line);
    expect(readFileSync(`${cfg.keyFile}.pub`, "utf8")).toBe(`${line}\n`);
    expect(readFileSync(`${cfg.keyFile}.broken`, "utf8")).toBe(broken);
    expect(existsSync(cfg.keyFile)).toBe(true);
  });
});
