import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { docker } from "../helpers/docker.js";
import { makeGitRepo } from "../helpers/host.js";
import { uniqueName } from "../helpers/names.js";
import { guestFile } from "../helpers/provision.js";

/**
 * devcontainer.json's build on the real Docker engine (issue 13): a Dockerfile
 * FROM shed-base:latest built, streamed and cached by its content's hash, and
 * two real-world shapes on it: a Node project whose postCreateCommand is
 * `npm ci` and a Python one with `pip install -r requirements.txt`. Only
 * packages reachable here: Debian's (nodejs, python3-pip) and the npm
 * registry (npm itself is packed on this host from the registry; the Python
 * requirement is a package in the repository, as PyPI is out of reach).
 * Also remoteUser as a user the Dockerfile adds. Time budget: about 3 minutes
 * the first time on 2 busy cores (the apt-get of the build), well under 1
 * minute once the image is cached.
 */
let cli: CliUser;
useCliServer((_s, user) => {
  cli = user;
});

/** The image's folder: the same in both repositories, so the second create reuses the first one's build. */
function imageFiles(): Record<string, string> {
  return {
    ".devcontainer/image/Dockerfile": [
      "FROM shed-base:latest",
      "USER root",
      "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs python3-pip python3-venv python3-wheel >/dev/null && rm -rf /var/lib/apt/lists/*",
      // This host's CAs, so that npm reaches the registry through whatever TLS proxy the host trusts.
      "COPY host-ca.crt /usr/local/share/ca-certificates/host-ca.crt",
      "RUN update-ca-certificates >/dev/null 2>&1",
      "ADD npm.tgz /opt/npm/",
      `RUN printf '#!/bin/sh\\nexec node /opt/npm/package/bin/npm-cli.js "$@"\\n' >/usr/local/bin/npm && chmod +x /usr/local/bin/npm`,
      `RUN python3 -m venv --system-site-packages /opt/venv && ln -s /opt/venv/bin/pip /usr/local/bin/pip && printf '#!/bin/sh\\nexec /opt/venv/bin/python "$@"\\n' >/usr/local/bin/python && chmod +x /usr/local/bin/python && chown -R shed: /opt/venv`,
      // A user of the image's own, for remoteUser.
      "RUN useradd -m -s /bin/bash dev",
      // Last: a new value builds only this layer again (the engine's layer cache keeps the ones above).
      "ARG GREETING=unset",
      'RUN echo "$GREETING" >/etc/greeting',
      "",
    ].join("\n"),
  };
}

let npmTarball: string | undefined;
/** npm itself from the npm registry, as a tarball ADDed by the Dockerfile (Debian's npm is hundreds of packages). */
function contextBinaries(repo: string): void {
  if (!npmTarball) {
    const dir = tempDir("npm");
    execFileSync("npm", ["pack", "npm@10.9.2", "--pack-destination", dir, "--silent"], { stdio: "pipe" });
    const file = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    if (!file) throw new Error("npm pack made no tarball");
    npmTarball = join(dir, file);
  }
  copyFileSync(npmTarball, join(repo, ".devcontainer", "image", "npm.tgz"));
  copyFileSync(
    existsSync("/etc/ssl/certs/ca-certificates.crt") ? "/etc/ssl/certs/ca-certificates.crt" : "/dev/null",
    join(repo, ".devcontainer", "image", "host-ca.crt"),
  );
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", repo, "-c", "user.name=T", "-c", "user.email=t@shed.invalid", ...args], {
      stdio: "pipe",
    });
  git("add", "-A");
  git("commit", "-q", "-m", "image files");
}

function devcontainer(postCreate: string, extra: Record<string, unknown> = {}): string {
  return `{
  // Built from the Dockerfile in image/ (the context: the same in both repositories).
  "build": { "dockerfile": "image/Dockerfile", "context": "image", "args": { "GREETING": "\${localEnv:DC_GREETING}" }, },
  "containerEnv": { "NODE_EXTRA_CA_CERTS": "/etc/ssl/certs/ca-certificates.crt" },
  "postCreateCommand": ${JSON.stringify(postCreate)},
  ${Object.entries(extra)
    .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)},`)
    .join("\n  ")}
}
`;
}

const PACKAGE_JSON = `${JSON.stringify({ name: "dc-node", version: "1.0.0", private: true, dependencies: { "is-number": "7.0.0" } }, null, 2)}\n`;
const PACKAGE_LOCK = `${JSON.stringify(
  {
    name: "dc-node",
    version: "1.0.0",
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name: "dc-node", version: "1.0.0", dependencies: { "is-number": "7.0.0" } },
      "node_modules/is-number": {
        version: "7.0.0",
        resolved: "https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz",
        integrity: "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==",
        engines: { node: ">=0.12.0" },
      },
    },
  },
  null,
  2,
)}\n`;

describe("devcontainer.json with build", () => {
  const nodeShed = uniqueName("dcnode");
  // A build arg of this run's own: its image is new (so it is really built), and removed at the end.
  const greeting = `hello-${nodeShed}`;
  let firstImage: string;
  afterAll(async () => {
    if (firstImage)
      await docker
        .getImage(firstImage)
        .remove({ force: true })
        .catch(() => undefined);
  });

  it("a Dockerfile FROM shed-base:latest is built (output streamed, args applied) and a Node project's npm ci runs", async () => {
    const repo = makeGitRepo({
      ".devcontainer/devcontainer.json": devcontainer("npm ci"),
      ...imageFiles(),
      "package.json": PACKAGE_JSON,
      "package-lock.json": PACKAGE_LOCK,
      "index.js": "console.log('is 5 a number:', require('is-number')(5));\n",
    });
    contextBinaries(repo);
    const out = await cliOk(cli, ["create", nodeShed, "--repo", repo, "--no-sync"], { DC_GREETING: greeting });
    // The engine's build output, streamed as the step's progress.
    expect(out.stderr).toMatch(/\[devcontainer\] Step \d+\/\d+ : RUN echo "\$GREETING"/);
    expect(out.stderr).toContain("[devcontainer] Successfully tagged shed-devcontainer:");
    const shed = json(await cliOk(cli, ["--json", "status", nodeShed]));
    firstImage = shed.image;
    expect(firstImage).toMatch(/^shed-devcontainer:[0-9a-f]{20}$/);
    expect(shed.provision.hooks.install.state).toBe("succeeded");
    expect(await guestFile(nodeShed, "/etc/greeting")).toBe(`${greeting}\n`);
    const ran = await cliOk(cli, ["exec", nodeShed, "--", "node", "index.js"]);
    expect(ran.stdout).toBe("is 5 a number: true\n");
    const labels = (await docker.getImage(firstImage).inspect()).Config.Labels;
    expect(labels?.["dev.shed.devcontainer"]).toBe("1");
  });

  it("the same Dockerfile and context is not built again; a Python project's pip install -r requirements.txt runs", async () => {
    const name = uniqueName("dcpy");
    const repo = makeGitRepo({
      ".devcontainer/devcontainer.json": devcontainer("pip install -r requirements.txt"),
      ...imageFiles(),
      "requirements.txt": "./greeter-src\n",
      "greeter-src/setup.py":
        'from setuptools import setup\nsetup(name="greeter", version="0.1", py_modules=["greeter"])\n',
      "greeter-src/greeter.py": "def greet():\n    return 'hello from greeter'\n",
    });
    contextBinaries(repo);
    const out = await cliOk(cli, ["create", name, "--repo", repo, "--no-sync"], { DC_GREETING: greeting });
    expect(out.stderr).toContain("(cached: same Dockerfile and context)");
    const shed = json(await cliOk(cli, ["--json", "status", name]));
    expect(shed.image).toBe(firstImage);
    expect(shed.provision.hooks.install.state).toBe("succeeded");
    const ran = await cliOk(cli, ["exec", name, "--", "python", "-c", "import greeter; print(greeter.greet())"]);
    expect(ran.stdout).toBe("hello from greeter\n");
  });

  it("remoteUser a user the Dockerfile added: hooks, exec and ssh run as that user, with its home", async () => {
    const name = uniqueName("dcdev");
    const repo = makeGitRepo({
      ".devcontainer/devcontainer.json": devcontainer('echo "$(id -un) $HOME" > /tmp/who', { remoteUser: "dev" }),
      ...imageFiles(),
    });
    contextBinaries(repo);
    const out = await cliOk(cli, ["create", name, "--repo", repo, "--no-sync"], { DC_GREETING: greeting });
    // The step's line gives way to its warning (remoteUser), so the build's own output says it was reused.
    expect(out.stderr).toContain("is already built from the same Dockerfile and context");
    expect(await guestFile(name, "/tmp/who")).toBe("dev /home/dev\n");
    const ran = await cliOk(cli, ["exec", name, "--", "sh", "-c", 'echo "$(id -un) $HOME"']);
    expect(ran.stdout).toBe("dev /home/dev\n");
    const host = readFileSync(join(cli.dir, "default_host"), "utf8").trim();
    // Asynchronously: the server answering it runs in this process.
    const ssh = await promisify(execFile)(
      "ssh",
      ["-F", join(cli.dir, "ssh_config"), "-T", "-l", name, host, "id -un"],
      {
        env: cli.env,
      },
    );
    expect(ssh.stdout).toBe("dev\n");
  });
});
