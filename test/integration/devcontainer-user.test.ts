import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { makeGitRepo } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import { guestFile } from "../helpers/provision.js";

/**
 * devcontainer.json's remoteUser owns what Shed does for the shed (issue 13),
 * on the real engine: an image built FROM shed-base:latest that adds user
 * `dev` (uid 1001). The new workspace is handed to dev and the clone is dev's,
 * so the lifecycle commands can write in it; the server's credentials are
 * copied into dev's home and owned by dev (a uid-1000 source too, which a
 * user-shed shed mounts live); known_hosts and the repository's git
 * credential store are dev's; mise shims in dev's home reach PATH; `shed sync` puts `~` in dev's home; a restart
 * copies the credentials again. A shed without remoteUser keeps all of it
 * user shed's. Time budget: about 1 minute (one small build, three creates).
 */
const SECRET = "PRIVATE-KEY-for-dev-only";
const TOKEN = "repo-token-s3cret";
let cli: CliUser;
// Made before the server starts (useCliServer reads the config when this file loads).
const creds = tempDir("dc-user-creds");
{
  const ssh = join(creds, "ssh");
  mkdirSync(ssh, { mode: 0o700 });
  writeFileSync(join(ssh, "id_ed25519"), `${SECRET}\n`, { mode: 0o600 });
  chmodSync(join(ssh, "id_ed25519"), 0o600);
  writeFileSync(join(creds, "token"), "tool-token-1\n", { mode: 0o600 });
  // Owned by uid 1000: a user-shed shed mounts it live; a remoteUser shed gets a copy.
  writeFileSync(join(creds, "live"), "live-1\n", { mode: 0o600 });
  spawnSync("chown", ["1000:1000", join(creds, "live")]);
}

useCliServer(
  (_s, user) => {
    cli = user;
  },
  {
    credentials: {
      ssh: { source: join(creds, "ssh"), target: "/home/shed/.ssh" },
      token: { source: join(creds, "token"), target: "/home/shed/.config/tool/token", readonly: true },
      live: { source: join(creds, "live"), target: "/home/shed/.live" },
    },
  },
);

const images: string[] = [];
afterAll(async () => {
  for (const image of images) {
    await docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => undefined);
  }
});

/** "MODE OWNER" of each path, as root (one line each), or the error. */
async function stats(name: string, ...paths: string[]): Promise<string> {
  const r = await dockerExec(name, ["stat", "-c", "%a %U", "--", ...paths], "root");
  return r.code === 0 ? r.stdout : `stat failed: ${r.stderr}`;
}

function devRepo(devcontainer: Record<string, unknown>): string {
  const repo = makeGitRepo({
    ".devcontainer/devcontainer.json": JSON.stringify(devcontainer),
    ".devcontainer/Dockerfile": "FROM shed-base:latest\nRUN useradd -m -s /bin/bash dev\n",
    "README.md": "hello\n",
  });
  // The local checkout's origin carries a token: it goes to the shed's git credential store.
  execFileSync("git", ["-C", repo, "remote", "add", "origin", `http://tok:${TOKEN}@git.example.invalid/team/repo.git`]);
  return repo;
}

describe("remoteUser owns the shed's work", () => {
  const name = uniqueName("dcowner");

  it("workspace, clone, hooks, credentials, known_hosts and the git credential store are dev's, in dev's home", async () => {
    const repo = devRepo({
      build: { dockerfile: "Dockerfile" },
      remoteUser: "dev",
      // Writes in /workspace: only the workspace's owner can.
      // Also a mise-style shim in dev's home: PATH capture finds it there.
      postCreateCommand: [
        'id -un > /workspace/hook-user && echo "$HOME" >> /workspace/hook-user',
        "mkdir -p ~/.local/share/mise/shims",
        'printf "#!/bin/sh\\necho shim-ran\\n" > ~/.local/share/mise/shims/devtool',
        "chmod +x ~/.local/share/mise/shims/devtool",
      ].join(" && "),
    });
    const out = await cliOk(cli, ["create", name, "--repo", repo, "--no-sync"]);
    const shed = json(await cliOk(cli, ["--json", "status", name]));
    images.push(shed.image);
    expect(shed.provision.hooks.install.state, out.stderr).toBe("succeeded");
    expect(shed.provision.user).toBe("dev");
    expect((await cliOk(cli, ["status", name])).stdout).toContain(
      "  user: dev (remoteUser; hooks, commands, workspace and credentials)\n",
    );
    expect(out.stderr).not.toContain("stay user shed's");
    expect(await guestFile(name, "/workspace/hook-user")).toBe("dev\n/home/dev\n");
    expect(await stats(name, "/workspace", "/workspace/README.md", "/workspace/.git", "/workspace/hook-user")).toMatch(
      /^\d+ dev\n\d+ dev\n\d+ dev\n\d+ dev\n$/,
    );

    expect((await cliOk(cli, ["exec", name, "--", "devtool"])).stdout).toBe("shim-ran\n");

    // Credentials: copies in dev's home, dev's, modes kept (readonly: no w bit); none in shed's.
    expect(out.stderr).toContain("copied as user dev");
    expect(await stats(name, "/home/dev/.ssh/id_ed25519", "/home/dev/.config/tool/token", "/home/dev/.live")).toBe(
      "600 dev\n400 dev\n600 dev\n",
    );
    expect(await guestFile(name, "/home/dev/.ssh/id_ed25519")).toBe(`${SECRET}\n`);
    expect(await guestFile(name, "/home/dev/.live")).toBe("live-1\n");
    expect(await guestFile(name, "/home/shed/.ssh/id_ed25519")).toBeUndefined();
    const ran = await cliOk(cli, ["exec", name, "--", "sh", "-c", "cat ~/.config/tool/token ~/.live"]);
    expect(ran.stdout).toBe("tool-token-1\nlive-1\n");

    // known_hosts for dev's own ssh (a clone or fetch over SSH by the hooks).
    expect(await stats(name, "/home/dev/.ssh/known_hosts")).toBe("644 dev\n");
    expect(await guestFile(name, "/home/dev/.ssh/known_hosts")).toContain("github.com ");

    // The git credential store is dev's, and git run by dev in the checkout finds the token there.
    expect(await stats(name, "/home/dev/.config/shed", "/home/dev/.config/shed/git-credentials")).toBe(
      "700 dev\n600 dev\n",
    );
    const fill = await dockerExec(
      name,
      [
        "sh",
        "-c",
        'printf "protocol=http\\nhost=%s\\npath=team/repo.git\\n\\n" "$1" | GIT_TERMINAL_PROMPT=0 git -C /workspace credential fill',
        "sh",
        "git.example.invalid",
      ],
      "dev",
    );
    expect(fill.code, fill.stderr).toBe(0);
    expect(fill.stdout).toContain(`password=${TOKEN}\n`);
    expect(await guestFile(name, "/home/shed/.config/shed/git-credentials")).toBeUndefined();
  });

  it("shed sync puts ~ in dev's home, owned by dev", async () => {
    writeFileSync(
      join(cli.dir, "sync.yaml"),
      "features:\n  dots:\n    paths: [{ source: ~/.dev-dotfile, target: ~/.dotfile }]\nprofiles:\n  default: { features: [dots] }\n",
    );
    writeFileSync(join(cli.dir, ".dev-dotfile"), "synced for dev\n");
    await cliOk(cli, ["sync", name]);
    expect(await guestFile(name, "/home/dev/.dotfile")).toBe("synced for dev\n");
    expect(await stats(name, "/home/dev/.dotfile")).toBe("644 dev\n");
    expect(await guestFile(name, "/home/shed/.dotfile")).toBeUndefined();
    // Up to date the second time: the listing looked in dev's home.
    const again = json(await cliOk(cli, ["--json", "sync", name]));
    expect(again.up_to_date).toBeGreaterThan(0);
    expect(again.files_sent ?? 0).toBe(0);
  });

  it("a restart copies the credentials into dev's home again", async () => {
    writeFileSync(join(creds, "token"), "tool-token-2\n");
    await cliOk(cli, ["stop", name]);
    await cliOk(cli, ["start", name]);
    expect(await guestFile(name, "/home/dev/.config/tool/token")).toBe("tool-token-2\n");
    expect(await stats(name, "/home/dev/.config/tool/token")).toBe("400 dev\n");
  });
});

describe("without remoteUser", () => {
  it("the same credentials stay user shed's: the uid-1000 source mounted live, the rest copied", async () => {
    const name = uniqueName("dcshed");
    const repo = devRepo({ build: { dockerfile: "Dockerfile" }, postCreateCommand: "id -un > /workspace/hook-user" });
    const out = await cliOk(cli, ["create", name, "--repo", repo, "--no-sync"]);
    expect(out.stderr).toContain("1 bind-mounted (live), 2 copied as user shed");
    expect(json(await cliOk(cli, ["--json", "status", name])).provision.user).toBeUndefined();
    expect(await guestFile(name, "/workspace/hook-user")).toBe("shed\n");
    expect(await stats(name, "/workspace/README.md", "/home/shed/.ssh/id_ed25519", "/home/shed/.live")).toBe(
      "644 shed\n600 shed\n600 shed\n",
    );
    expect(await guestFile(name, "/home/shed/.config/shed/git-credentials")).toContain("git.example.invalid");
    expect(await guestFile(name, "/home/dev/.ssh/id_ed25519")).toBeUndefined();
  });
});
