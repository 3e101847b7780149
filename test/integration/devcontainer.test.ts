import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, show } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { containerExists, docker, volumeExists } from "../helpers/docker.js";
import { makeGitRepo } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import { guestFile } from "../helpers/provision.js";
import type { TestServer } from "../helpers/server.js";

/**
 * devcontainer.json as a provisioning source (issue 13), black-box: real git
 * repositories made here, the packaged CLI (run `npm run build` first), the
 * real Docker engine. Time budget: about 1 minute on 2 busy cores (eight small
 * sheds, two of them shared by the tests of their describe). The Dockerfile build and the real
 * Node/Python projects are in devcontainer-build.test.ts.
 */
let cli: CliUser;
let server: TestServer;
useCliServer((s: TestServer, user) => {
  server = s;
  cli = user;
});

async function create(name: string, repo: string, env?: Record<string, string>, extra: string[] = []) {
  return cliOk(cli, ["create", name, "--repo", repo, "--no-sync", ...extra], env);
}

async function execOut(name: string, argv: string[]): Promise<string> {
  return (await cliOk(cli, ["exec", name, "--", ...argv])).stdout;
}

/** A plain `ssh NAME@server command` with the real OpenSSH client and the CLI's ssh_config (not the CLI's exec path). */
function sshCommand(name: string, command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const host = readFileSync(join(cli.dir, "default_host"), "utf8").trim();
  return new Promise((resolve) => {
    execFile(
      "ssh",
      ["-F", join(cli.dir, "ssh_config"), "-T", "-l", name, host, command],
      { env: { ...process.env, ...cli.env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const FORMS = `// devcontainer.json with comments and trailing commas, as editors write it
{
  "name": "forms", /* a block comment */
  "containerEnv": { "FROM_CONTAINER": "c-\${localEnv:DC_TEST_LOCAL}", },
  "remoteEnv": {
    "R_LOCAL": "\${localEnv:DC_TEST_LOCAL}",
    "R_CONTAINER": "\${containerEnv:FROM_CONTAINER}",
    "R_FOLDER": "\${containerWorkspaceFolder}",
    "R_BASENAME": "\${localWorkspaceFolderBasename}",
    "R_UNKNOWN": "[\${localEnv:DC_TEST_NOT_SET}]",
    "R_PATH": "\${containerEnv:PATH}:/opt/extra",
  },
  "onCreateCommand": "echo onCreate >> /tmp/order; echo \\"$R_LOCAL\\" > /tmp/hook-r-local",
  "updateContentCommand": ["sh", "-c", "echo updateContent >> /tmp/order; printf '%s' \\"$1\\" > /tmp/argv", "sh", "a b $HOME"],
  "postCreateCommand": {
    "first": "echo postCreate >> /tmp/order; echo line-from-first",
    "second": ["sh", "-c", "echo line-from-second"],
  },
  "postStartCommand": "echo postStart >> /tmp/order",
  "postAttachCommand": "echo \\"attached $R_LOCAL\\" >> /tmp/attach; echo hello-from-postAttach",
  "forwardPorts": [3000],
  "features": { "ghcr.io/devcontainers/features/node:1": {} },
  "initializeCommand": "touch /tmp/initialize-ran",
}
`;

describe("a repository with only a devcontainer.json", () => {
  const name = uniqueName("dcforms");
  let repo: string;
  let created: { stdout: string; stderr: string };

  it("create runs onCreate, updateContent, postCreate, then postStart, in each command form", async () => {
    repo = makeGitRepo({ ".devcontainer/devcontainer.json": FORMS, "README.md": "forms\n" });
    created = await create(name, repo, { DC_TEST_LOCAL: "from-the-cli" });
    expect(created.stderr).toContain("provisioning from .devcontainer/devcontainer.json");
    expect(await guestFile(name, "/tmp/order")).toBe("onCreate\nupdateContent\npostCreate\npostStart\n");
    // The array ran as argv: no shell expanded "$HOME".
    expect(await guestFile(name, "/tmp/argv")).toBe("a b $HOME");
    // The object's entries ran, each line marked with its name, in the install stage's log.
    const log = await execOut(name, ["cat", "/var/log/shed/install.log"]);
    expect(log).toContain("[first] line-from-first\n");
    expect(log).toContain("[second] line-from-second\n");
    expect(await guestFile(name, "/tmp/initialize-ran")).toBeUndefined();
  });

  it("says what it did not do: one warning per key, initializeCommand skipped", () => {
    const out = created.stderr;
    expect(out).toMatch(/features is not done by Shed yet/);
    expect(out).toMatch(/forwardPorts is not done by Shed yet/);
    expect(out).toMatch(/initializeCommand was skipped/);
  });

  it("remoteEnv is substituted and set for hooks and shed exec; containerEnv for every process", async () => {
    expect(await guestFile(name, "/tmp/hook-r-local")).toBe("from-the-cli\n");
    const env = await execOut(name, ["env"]);
    const get = (k: string) =>
      env
        .split("\n")
        .find((l) => l.startsWith(`${k}=`))
        ?.slice(k.length + 1);
    expect(get("R_LOCAL")).toBe("from-the-cli");
    expect(get("R_CONTAINER")).toBe("c-from-the-cli");
    expect(get("FROM_CONTAINER")).toBe("c-from-the-cli");
    expect(get("R_FOLDER")).toBe("/workspace");
    expect(get("R_BASENAME")).toBe(basename(repo));
    expect(get("R_UNKNOWN")).toBe("[]");
    expect(get("R_PATH")).toMatch(/^\/.*\/usr\/bin.*:\/opt\/extra$/);
    // No remoteUser: everything runs as shed.
    expect(await execOut(name, ["id", "-un"])).toBe("shed\n");
  });

  it("status shows the stages and where they come from; stop and start run postStart again, not the install", async () => {
    const status = await cliOk(cli, ["status", name]);
    expect(status.stdout).toContain("provision: .devcontainer/devcontainer.json (no .shed/provision.yaml)");
    expect(status.stdout).toContain("install stage: onCreateCommand, updateContentCommand, postCreateCommand");
    expect(status.stdout).toContain("startup stage: postStartCommand");
    const shed = json(await cliOk(cli, ["--json", "status", name]));
    expect(shed.provision.source).toBe(".devcontainer/devcontainer.json");
    expect(shed.provision.hooks.install.state).toBe("succeeded");
    expect(shed.provision.forward_ports).toEqual(["3000"]);
    const shown = await cliOk(cli, ["show", name]);
    expect(shown.stdout).toContain(`forwardPorts 3000: ssh -N -L 3000:localhost:3000 shed-${name}`);
    await cliOk(cli, ["stop", name]);
    await cliOk(cli, ["start", name]);
    expect(await guestFile(name, "/tmp/order")).toBe("onCreate\nupdateContent\npostCreate\npostStart\npostStart\n");
  });
  it("postAttachCommand runs when a user attaches with shed console, not before", async () => {
    expect(await guestFile(name, "/tmp/attach")).toBeUndefined();
    const res = await cli.run(["console", name], { input: "echo in-the-console\nexit 0\n" });
    expect(res.code, show(res)).toBe(0);
    expect(res.stdout).toContain("in-the-console");
    expect(res.stderr).toContain("hello-from-postAttach");
    expect(await guestFile(name, "/tmp/attach")).toBe("attached from-the-cli\n");
  });
});

describe("failures and problems", () => {
  const name = uniqueName("dcfail");
  // .devcontainer.json at the root; line 4 has a type error, line 6 lacks its comma (so line 7's property is refused).
  const FILE = [
    "{",
    '  "onCreateCommand": "echo onCreate >> /tmp/order",',
    '  "postCreateCommand": "test -e /tmp/allowed || exit 2; echo postCreate >> /tmp/order",',
    '  "postStartCommand": 42,',
    '  "remoteEnv": { "GOOD": "kept", "BAD": [1] },',
    '  "containerEnv": { "A": "1" }',
    '  "postAttachCommand": "true"',
    "}",
    "",
  ].join("\n");
  let created: { stdout: string; stderr: string };

  it("a file with errors: each warning names file:line:col and the property; the rest applies", async () => {
    const repo = makeGitRepo({ ".devcontainer.json": FILE });
    created = await create(name, repo);
    expect(created.stderr).toContain(
      ".devcontainer.json:4:23: postStartCommand: must be a string, an array of strings or an object of those, not a number; refused",
    );
    expect(created.stderr).toContain(".devcontainer.json:5:41: remoteEnv.BAD: must be a string, not an array; refused");
    expect(created.stderr).toContain(".devcontainer.json:7:3: postAttachCommand: JSON syntax: a comma is missing");
    expect(await execOut(name, ["printenv", "GOOD"])).toBe("kept\n");
    expect(await execOut(name, ["printenv", "A"])).toBe("1\n");
  });

  it("a failing postCreateCommand is a warning, is not marked done, and shed provision runs the stage again", async () => {
    expect(created.stderr).toContain("devcontainer.json: postCreateCommand failed with exit code 2");
    const status = await cliOk(cli, ["status", name]);
    expect(status.stdout).toContain("install: devcontainer.json: postCreateCommand failed with exit code 2");
    expect(await guestFile(name, "/var/lib/shed/install.done")).toBeUndefined();
    expect(await guestFile(name, "/tmp/order")).toBe("onCreate\n");

    const again = await cli.run(["provision", name]);
    expect(again.code, show(again)).toBe(1);
    await cliOk(cli, ["exec", name, "--", "touch", "/tmp/allowed"]);
    await cliOk(cli, ["provision", name]);
    expect(await guestFile(name, "/tmp/order")).toBe("onCreate\nonCreate\nonCreate\npostCreate\n");
    expect(await guestFile(name, "/var/lib/shed/install.done")).toBeDefined();
    expect(json(await cliOk(cli, ["--json", "status", name])).provision.hooks.install.state).toBe("succeeded");
  });
});

describe("choosing the file", () => {
  it("provision.yaml wins over devcontainer.json, and create says so", async () => {
    const name = uniqueName("dcboth");
    const repo = makeGitRepo({
      ".devcontainer/devcontainer.json": '{ "onCreateCommand": "touch /tmp/devcontainer-ran" }',
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh": "#!/bin/sh\ntouch /tmp/provision-yaml-ran\n",
    });
    const out = await create(name, repo);
    expect(out.stderr).toContain(".devcontainer/devcontainer.json is not used: .shed/provision.yaml is there too");
    expect(await guestFile(name, "/tmp/provision-yaml-ran")).toBe("");
    expect(await guestFile(name, "/tmp/devcontainer-ran")).toBeUndefined();
  });

  it("with several, create lists them and --devcontainer picks one", async () => {
    const name = uniqueName("dcpick");
    const repo = makeGitRepo({
      ".devcontainer/python/devcontainer.json": '{ "onCreateCommand": "touch /tmp/python" }',
      ".devcontainer/node/devcontainer.json": '{ "onCreateCommand": "touch /tmp/node" }',
    });
    const refused = await cli.run(["create", name, "--repo", repo, "--no-sync"]);
    expect(refused.code, show(refused)).not.toBe(0);
    expect(refused.stderr).toContain("2 devcontainer.json files: node (.devcontainer/node/devcontainer.json), python");
    expect(refused.stderr).toContain("--devcontainer NAME");
    await create(name, repo, undefined, ["--devcontainer", "python"]);
    expect(await guestFile(name, "/tmp/python")).toBe("");
    expect(await guestFile(name, "/tmp/node")).toBeUndefined();
  });

  it("remoteUser: hooks, exec, console, postAttachCommand and ssh run as that user when the image has it", async () => {
    const asRoot = uniqueName("dcroot");
    const withRoot = await create(
      asRoot,
      makeGitRepo({
        ".devcontainer.json": JSON.stringify({
          remoteUser: "root",
          // On the engine already: used as it is, never pulled.
          image: "shed-base:latest",
          onCreateCommand: "id -un > /tmp/who",
          postStartCommand: "id -un > /tmp/who-start",
          postAttachCommand: "id -un > /tmp/who-attach",
        }),
      }),
    );
    // The clone is that user's too (the new workspace was handed to it first).
    expect(await execOut(asRoot, ["stat", "-c", "%U", "/workspace", "/workspace/.devcontainer.json"])).toBe(
      "root\nroot\n",
    );
    expect(withRoot.stderr).not.toContain("pulling");
    expect(await guestFile(asRoot, "/tmp/who")).toBe("root\n");
    expect(await guestFile(asRoot, "/tmp/who-start")).toBe("root\n");
    expect(await execOut(asRoot, ["sh", "-c", 'echo "$(id -un) $HOME"'])).toBe("root /root\n");
    const ssh = await sshCommand(asRoot, "id -un");
    expect(ssh.stdout, ssh.stderr).toBe("root\n");
    const res = await cli.run(["console", asRoot], { input: 'echo "console-user=$(id -un)"\nexit 0\n' });
    expect(res.code, show(res)).toBe(0);
    expect(res.stdout).toContain("console-user=root");
    expect(await guestFile(asRoot, "/tmp/who-attach")).toBe("root\n");

    // A record from before the user was recorded (remoteUser, no hookUser): everything stays shed's.
    const record = join(server.dir, "data", "sheds", `${asRoot}.json`);
    const meta = JSON.parse(readFileSync(record, "utf8"));
    expect(meta.devcontainer.hookUser).toBe("root");
    delete meta.devcontainer.hookUser;
    writeFileSync(record, JSON.stringify(meta));
    expect(await execOut(asRoot, ["id", "-un"])).toBe("shed\n");
    expect((await sshCommand(asRoot, "id -un")).stdout).toBe("shed\n");
  });

  it("remoteUser the image lacks: hooks and exec run as shed, with a warning", async () => {
    const missing = uniqueName("dcnouser");
    const without = await create(
      missing,
      makeGitRepo({ ".devcontainer.json": '{ "remoteUser": "vscode", "onCreateCommand": "id -un > /tmp/who" }' }),
    );
    expect(without.stderr).toContain('remoteUser/containerUser "vscode" does not exist in the image');
    expect(await guestFile(missing, "/tmp/who")).toBe("shed\n");
    expect(await execOut(missing, ["id", "-un"])).toBe("shed\n");
  });

  it("an image neither on the engine nor pullable fails fast, naming it and the engine's reason, and leaves nothing", async () => {
    const name = uniqueName("dcpull");
    const image = "shed-test-missing.invalid/nope:1";
    const repo = makeGitRepo({ ".devcontainer.json": JSON.stringify({ image, onCreateCommand: "true" }) });
    const refused = await cli.run(["create", name, "--repo", repo, "--no-sync"]);
    expect(refused.code, show(refused)).not.toBe(0);
    expect(refused.stderr).toContain(`${image} is not on the engine: pulling it`);
    expect(refused.stderr).toContain(`image "${image}" is not on this server and could not be pulled: `);
    // The engine's reason follows (here: the registry's host does not resolve).
    expect(refused.stderr).toMatch(/could not be pulled: .*shed-test-missing\.invalid/);
    expect(refused.stderr).toContain("check the name and tag in devcontainer.json's image");
    expect((await cli.run(["status", name])).code).not.toBe(0);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  });

  it("a Dockerfile whose build fails ends the create with the failed step, and leaves nothing, not even the step's container", async () => {
    const name = uniqueName("dcbuildfail");
    const repo = makeGitRepo({
      ".devcontainer/devcontainer.json": '{ "build": { "dockerfile": "Dockerfile" } }',
      ".devcontainer/Dockerfile": `FROM shed-base:latest\nRUN echo failing-step-${name} && exit 3\n`,
    });
    const refused = await cli.run(["create", name, "--repo", repo, "--no-sync"]);
    expect(refused.code, show(refused)).not.toBe(0);
    expect(refused.stderr).toContain(`[devcontainer] failing-step-${name}`);
    expect(refused.stderr).toMatch(/building Dockerfile failed: .*returned a non-zero code: 3/);
    expect(refused.stderr).not.toContain("HTTP code");
    expect((await cli.run(["status", name])).code).not.toBe(0);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
    // The engine removes the failed step's own container too (forcerm), as it does a successful step's.
    const left = await docker.listContainers({ all: true });
    expect(left.filter((c) => c.Command.includes(`failing-step-${name}`))).toEqual([]);
  });

  it("dockerComposeFile is refused with a clear error, and nothing is made", async () => {
    const name = uniqueName("dccompose");
    const repo = makeGitRepo({ ".devcontainer.json": '{ "dockerComposeFile": "compose.yml", "service": "app" }' });
    const refused = await cli.run(["create", name, "--repo", repo, "--no-sync"]);
    expect(refused.code, show(refused)).not.toBe(0);
    expect(refused.stderr).toContain("dockerComposeFile: Docker Compose dev containers are not supported");
    expect((await cli.run(["status", name])).code).not.toBe(0);
  });
});
