import { execFileSync } from "node:child_process";
import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { cleanupDocker, containerExists, docker, dockerExec, volumeExists } from "../helpers/docker.js";
import { makeGitRepo } from "../helpers/host.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";
import { guestFile } from "../helpers/provision.js";

/**
 * Images that lack what Shed needs are completed at create (issue 13,
 * src/guest/complete-image.ts), on the real engine through the CLI: small
 * images built here FROM shed-base:latest with user shed (and sudo, or
 * useradd) taken out, one whose uid 1000 is `vscode` with a USER and
 * ENTRYPOINT of its own, and one with neither bash nor a package manager.
 * sudo comes from Debian's mirror through apt-get. Time budget: about
 * 1.5 minutes (the apt-get run dominates), 3 at most on 2 busy cores.
 */
/** Credentials below the home the completion re-owns: one mounted live (its source is uid 1000's), one copied (root's). */
const creds = tempDir("cmpl-creds");
const liveCred = join(creds, "live");
mkdirSync(liveCred);
writeFileSync(join(liveCred, "inner"), "inner\n", { mode: 0o600 });
chownSync(join(liveCred, "inner"), 1000, 1000);
chownSync(liveCred, 1000, 1000);
writeFileSync(join(creds, "token"), "token\n", { mode: 0o600 });

let cli: CliUser;
useCliServer(
  (_s, user) => {
    cli = user;
  },
  {
    credentials: {
      live: { source: liveCred, target: "/home/shed/.live" },
      token: { source: join(creds, "token"), target: "/home/shed/.config/token" },
    },
  },
);

const STATE = "/var/lib/shed/image-completed";

/** No user shed, no sudo, no /workspace (so the workspace volume starts root-owned), no Shed folders. */
const NO_SHED = `FROM shed-base:latest
USER root
RUN userdel -r shed && rm -f /etc/sudoers.d/shed && SUDO_FORCE_REMOVE=yes dpkg --purge sudo >/dev/null \\
 && rm -rf /workspace /var/log/shed /var/lib/shed
`;
/** uid 1000 is vscode's (as in the dev containers' images), no useradd or groupadd, a USER and ENTRYPOINT of its own. */
const VSCODE = `FROM shed-base:latest
USER root
RUN userdel -r shed && rm -f /etc/sudoers.d/shed && useradd -m -u 1000 -s /bin/bash vscode \\
 && rm -f /usr/sbin/useradd /usr/sbin/groupadd
USER vscode
ENTRYPOINT ["/bin/false"]
`;
/** Nothing that can bring bash back: no package manager. */
const NO_BASH = `FROM shed-base:latest
USER root
RUN userdel -r shed && rm -f /usr/bin/apt-get /usr/bin/bash
`;

const images = {
  noShed: `shed-test-complete:${RUN_PREFIX}-noshed`,
  vscode: `shed-test-complete:${RUN_PREFIX}-vscode`,
  noBash: `shed-test-complete:${RUN_PREFIX}-nobash`,
};

beforeAll(() => {
  const recipes: [string, string][] = [
    [images.noShed, NO_SHED],
    [images.vscode, VSCODE],
    [images.noBash, NO_BASH],
  ];
  for (const [tag, dockerfile] of recipes) {
    execFileSync("docker", ["build", "-q", "-t", tag, "-"], { input: dockerfile, stdio: ["pipe", "pipe", "pipe"] });
  }
}, 60_000);

afterAll(async () => {
  // The sheds first: an image a container still uses would only lose its tag.
  await cleanupDocker();
  for (const tag of Object.values(images)) {
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  }
});

async function run(name: string, argv: string[], user = "shed"): Promise<string> {
  const r = await dockerExec(name, argv, user);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} as ${user} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

describe("an image without user shed is completed at create", () => {
  it("Debian without shed and sudo: shed gets uid 1000 and sudo from apt-get; clone, hooks and exec work; a restart does not redo it", async () => {
    const name = uniqueName("cmpl");
    const repo = makeGitRepo({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh": 'echo "$(id -un) $HOME" >/tmp/hook-user\nsudo -n true\n',
      "README.md": "cloned\n",
    });
    const created = await cliOk(cli, ["create", name, "--repo", repo, "--image", images.noShed, "--no-sync"]);
    expect(show(created)).not.toMatch(/cannot run commands/);
    expect(show(created)).toContain(
      "image completed: user shed added (uid 1000, gid 1000); sudo installed with apt-get; passwordless sudo for shed; /workspace given to shed",
    );
    // Said as it happens, before the step ends: the install can take minutes.
    const progress = show(created);
    const installing = progress.indexOf("[shed] the image lacks sudo: installing sudo with apt-get (at most 300s");
    expect(installing, progress).toBeGreaterThanOrEqual(0);
    expect(progress.indexOf("[shed] apt-get ended after", installing)).toBeGreaterThan(installing);
    expect(progress.indexOf("[shed] the image has no user shed: adding it", installing)).toBeGreaterThan(installing);
    expect(progress).not.toContain("@shed\t");

    const state = await guestFile(name, STATE);
    expect(state).toContain("@shed\tuser\t1000\t1000\tuseradd\n");
    expect(state).toContain("@shed\tinstalled\tapt-get\tsudo\n");
    expect(state).toContain("@shed\tsudo\n");
    expect(state).toContain("@shed\tworkspace\n");
    expect(state).not.toContain("missing");

    expect(await run(name, ["id", "-u"])).toBe("1000\n");
    expect(await run(name, ["sudo", "-n", "id", "-un"])).toBe("root\n");
    expect(await run(name, ["stat", "-c", "%U %a", "/etc/sudoers.d/shed"], "root")).toBe("root 440\n");
    expect(await run(name, ["stat", "-c", "%U", "/workspace", "/var/log/shed", "/var/lib/shed"])).toBe(
      "shed\nshed\nshed\n",
    );
    // The clone (as shed, into the volume that was root's) and the install hook (as shed, using sudo).
    expect(await run(name, ["cat", "/workspace/README.md"])).toBe("cloned\n");
    // The home Docker made for the credentials' mounts is shed's; the live one is readable, the copy shed's.
    expect(await run(name, ["stat", "-c", "%U", "/home/shed", "/home/shed/.config", "/home/shed/.config/token"])).toBe(
      "shed\nshed\nshed\n",
    );
    expect(await run(name, ["cat", "/home/shed/.live/inner", "/home/shed/.config/token"])).toBe("inner\ntoken\n");
    const status = json(await cliOk(cli, ["--json", "status", name]));
    expect(status.provision.hooks.install.state).toBe("succeeded");
    expect(await guestFile(name, "/tmp/hook-user")).toBe("shed /home/shed\n");
    expect((await cliOk(cli, ["exec", name, "--", "sh", "-c", "id -un; sudo -n true && echo sudo-ok"])).stdout).toBe(
      "shed\nsudo-ok\n",
    );

    // The container's own layer keeps it: stop and start do not complete the image again.
    const before = await run(name, ["stat", "-c", "%y", STATE], "root");
    await cliOk(cli, ["stop", name]);
    const started = await cliOk(cli, ["start", name]);
    expect(show(started)).not.toContain("image completed");
    expect(await run(name, ["stat", "-c", "%y", STATE], "root")).toBe(before);
    expect(await run(name, ["id", "-u"])).toBe("1000\n");
    expect((await cliOk(cli, ["exec", name, "--", "sudo", "-n", "true"])).code).toBe(0);
  });

  it("devcontainer.json's image whose uid 1000 is vscode (USER vscode, another ENTRYPOINT, no useradd): shed gets uid 1001 and hooks run as shed", async () => {
    const name = uniqueName("cmplvs");
    const repo = makeGitRepo({
      ".devcontainer/devcontainer.json": JSON.stringify({
        image: images.vscode,
        postCreateCommand: 'echo "$(id -un) $(id -u)" >/tmp/hook-user && sudo -n true',
      }),
    });
    const created = await cliOk(cli, ["create", name, "--repo", repo, "--no-sync"]);
    // A credential is mounted live with the server's uid 1000, which is vscode's here: said at create.
    expect(show(created)).toContain(
      'user shed has uid 1001, not 1000: uid 1000 is the image\'s user "vscode"; credentials mounted live',
    );
    const shed = json(await cliOk(cli, ["--json", "status", name]));
    expect(shed.image).toBe(images.vscode);
    expect(shed.provision.hooks.install.state).toBe("succeeded");

    const state = await guestFile(name, STATE);
    // Added by appending to /etc/passwd and /etc/group (the image has no useradd); vscode keeps uid 1000.
    expect(state).toContain("@shed\tuser\t1001\t1001\tfiles\n");
    expect(state).toContain("@shed\tuid-holder\tvscode\n");
    expect(await run(name, ["id", "-un", "1000"])).toBe("vscode\n");
    expect(await run(name, ["sh", "-c", 'echo "$(id -u) $(id -g) $HOME"'])).toBe("1001 1001 /home/shed\n");
    expect(await run(name, ["sudo", "-n", "true"])).toBe("");
    // /workspace came from the image as vscode's; the empty volume became shed's, so the clone could land.
    expect(await run(name, ["stat", "-c", "%U", "/workspace"])).toBe("shed\n");
    expect(await run(name, ["test", "-f", "/workspace/.devcontainer/devcontainer.json"])).toBe("");
    expect(await guestFile(name, "/tmp/hook-user")).toBe("shed 1001\n");
    // The live mount below the home kept its owner on the host (uid 1000): re-owning the home stops at mount points.
    expect(statSync(liveCred).uid).toBe(1000);
    expect(statSync(join(liveCred, "inner")).uid).toBe(1000);
    expect(await run(name, ["cat", "/home/shed/.config/token"])).toBe("token\n");
    expect(await run(name, ["stat", "-c", "%U", "/home/shed"])).toBe("shed\n");
  });

  it("the same image with remoteUser vscode (a dev container image's usual shape): the shed's work is vscode's, no uid warning", async () => {
    const name = uniqueName("cmplrv");
    const repo = makeGitRepo({
      ".devcontainer/devcontainer.json": JSON.stringify({
        image: images.vscode,
        remoteUser: "vscode",
        postCreateCommand: "touch /workspace/made-by-hook && id -un > /tmp/hook-user",
      }),
    });
    const created = await cliOk(cli, ["create", name, "--repo", repo, "--no-sync"]);
    expect(show(created)).toContain("image completed: user shed added (uid 1001, gid 1001)");
    // Every credential of a remoteUser shed is a copy in that user's home: none has the server's uid.
    expect(show(created)).not.toContain("not 1000");
    const shed = json(await cliOk(cli, ["--json", "status", name]));
    expect(shed.provision.hooks.install.state).toBe("succeeded");
    expect(await guestFile(name, "/tmp/hook-user")).toBe("vscode\n");
    expect(
      await run(
        name,
        ["stat", "-c", "%U", "/workspace", "/workspace/made-by-hook", "/home/vscode/.live/inner"],
        "root",
      ),
    ).toBe("vscode\nvscode\nvscode\n");
    expect((await cliOk(cli, ["exec", name, "--", "sh", "-c", "cat ~/.live/inner"])).stdout).toBe("inner\n");
  });

  it("a --local-dir is never re-owned by the completion: user shed then takes its owner's uid as on shed-base", async () => {
    const name = uniqueName("cmplld");
    const dir = tempDir("cmpl-local");
    chownSync(dir, 1234, 1234);
    await cliOk(cli, ["create", name, "--local-dir", dir, "--image", images.vscode, "--no-sync"]);
    expect(await guestFile(name, STATE)).not.toContain("workspace");
    expect(statSync(dir).uid).toBe(1234);
    expect(await run(name, ["id", "-u"])).toBe("1234\n");
    await cliOk(cli, ["exec", name, "--", "sh", "-c", "echo hi > /workspace/made-in-shed"]);
    expect(statSync(join(dir, "made-in-shed")).uid).toBe(1234);
  });

  it("an image with neither bash nor a package manager fails create with a clear error and leaves nothing", async () => {
    const name = uniqueName("cmplno");
    const res = await cli.run(["create", name, "--image", images.noBash, "--no-sync"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(
      "the image lacks bash: it has no package manager Shed knows (apt-get, apk, dnf, microdnf or yum) to install it",
    );
    expect(res.stderr).toContain("Shed's scripts need bash");
    expect(res.stderr).toContain("FROM shed-base:latest");
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  });
});
