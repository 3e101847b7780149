/**
 * Credentials as tar through a guest's exec (src/guest/credential-copy.ts), the
 * path the VM backends take through their agent. Exercised here through a real
 * container's exec: the code only sees GuestExec, so what it does is the same.
 * Budget: about 20 s.
 */
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerGuestExec } from "../../src/backends/docker/docker-exec.js";
import type { CredentialConfig } from "../../src/config/server-config.js";
import { copyCredentialIn, copyCredentialsIn } from "../../src/guest/credential-copy.js";
import { runCollect } from "../../src/guest/exec.js";
import { tempDir } from "../helpers/cli.js";
import { cleanupDocker, docker } from "../helpers/docker.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";

const name = uniqueName("credcopy");
const guest = new DockerGuestExec(docker, `shed-${name}`);

async function sh(script: string, user = "shed") {
  return runCollect(guest, { argv: ["bash", "-c", script], user });
}

function cred(partial: Partial<CredentialConfig> & { name: string; source: string; target: string }): CredentialConfig {
  return { readonly: false, exclude: [], ...partial };
}

beforeAll(async () => {
  const c = await docker.createContainer({
    Image: "shed-base:latest",
    name: `shed-${name}`,
    Entrypoint: [],
    Cmd: ["sleep", "infinity"],
    Labels: { "dev.shed.test": RUN_PREFIX },
  });
  await c.start();
});

afterAll(async () => {
  await cleanupDocker();
});

describe("credentials copied in as tar", () => {
  it("a directory arrives with its modes, owned by user shed, excluded files never sent", async () => {
    const src = tempDir("cred-dir");
    writeFileSync(join(src, "id_ed25519"), "PRIVATE\n", { mode: 0o600 });
    writeFileSync(join(src, "config"), "Host *\n", { mode: 0o644 });
    mkdirSync(join(src, "sub"));
    writeFileSync(join(src, "sub", "secret.pem"), "PEM\n");
    writeFileSync(join(src, "sub", "keep.txt"), "keep\n");
    chmodSync(src, 0o700);
    await copyCredentialIn(guest, cred({ name: "ssh", source: src, target: "/home/shed/.ssh", exclude: ["*.pem"] }));
    const r = await sh(
      "cd ~/.ssh && stat -c '%n %a %U' id_ed25519 config sub/keep.txt && cat id_ed25519 && ls sub && ls -ld ~/.ssh | cut -c1-10",
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(
      "id_ed25519 600 shed\nconfig 644 shed\nsub/keep.txt 644 shed\nPRIVATE\nkeep.txt\ndrwx------\n",
    );
  });

  it("a file replaces the target atomically, and readonly takes the w bits off", async () => {
    const dir = tempDir("cred-file");
    const file = join(dir, "token");
    writeFileSync(file, "first\n", { mode: 0o600 });
    const c = cred({ name: "token", source: file, target: "/home/shed/.config/tool/token", readonly: true });
    await copyCredentialIn(guest, c);
    writeFileSync(file, "second\n");
    await copyCredentialIn(guest, c);
    const r = await sh("stat -c '%a %U' ~/.config/tool/token ~/.config/tool ~/.config; cat ~/.config/tool/token");
    expect(r.stdout).toBe("400 shed\n755 shed\n755 shed\nsecond\n");
    expect((await sh("echo x > ~/.config/tool/token")).exitCode).not.toBe(0);
  });

  it("a symlink in the source is copied as a link, never followed to the host file it names", async () => {
    const src = tempDir("cred-link");
    symlinkSync("/etc/shadow", join(src, "shadow"));
    await copyCredentialIn(guest, cred({ name: "links", source: src, target: "/home/shed/links" }));
    const r = await sh("readlink ~/links/shadow; [ -L ~/links/shadow ] && echo link");
    expect(r.stdout).toBe("/etc/shadow\nlink\n");
  });

  it("a failure is one warning naming the credential and the target; the others are still copied", async () => {
    const dir = tempDir("cred-mixed");
    writeFileSync(join(dir, "a"), "a\n");
    await sh("mkdir -p ~/blocked/target && touch ~/blocked/target/x");
    const warnings: string[] = [];
    const summary = await copyCredentialsIn(
      guest,
      [
        cred({ name: "gone", source: join(dir, "missing"), target: "/home/shed/gone" }),
        cred({ name: "clash", source: join(dir, "a"), target: "/home/shed/blocked/target" }),
        cred({ name: "good", source: join(dir, "a"), target: "/home/shed/good" }),
      ],
      (m) => warnings.push(m),
    );
    expect(summary).toMatch(/^1 of 3 copied as tar; known_hosts/);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain(`credential gone: source ${join(dir, "missing")} does not exist`);
    expect(warnings[1]).toContain("credential clash: copy to /home/shed/blocked/target failed");
    expect(warnings[1]).toContain("is a directory but the source is a file");
    expect((await sh("cat ~/good")).stdout).toBe("a\n");
  });
});
