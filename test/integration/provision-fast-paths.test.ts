import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers/cli.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";
import { guestFile, hooksOf, op, outputOf, resultOf, stepEnd, warningsOf, workspace } from "../helpers/provision.js";
import { type TestServer, useTestServer } from "../helpers/server.js";

/**
 * What create, stop, start and delete do without an exec of their own on
 * Docker: provision.yaml is read through the workspace volume on this host
 * (never through a symlink the shed made), PATH capture rides in the install's
 * exec, the install state is checked there too, and the clone is one exec.
 * Each fast path must give what the slow one gave.
 */
let server: TestServer;
useTestServer((s) => {
  server = s;
});

/** The execs Docker saw in the shed's container while `fn` ran (its own events, independent of Shed). */
async function execsDuring(name: string, fn: () => Promise<unknown>): Promise<string[]> {
  // The engine reads a timestamp as seconds.nanoseconds.
  const at = (ms: number) => `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1e6).padStart(9, "0")}`;
  const since = at(Date.now() - 10);
  await fn();
  const until = at(Date.now() + 10);
  const opts = { since, until, filters: { container: [`shed-${name}`], event: ["exec_create"] } };
  const stream = (await docker.getEvents(opts as unknown as Docker.GetEventsOptions)) as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks)
    .toString()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => String(JSON.parse(l).Action));
}

async function inShed(name: string, script: string, user = "shed"): Promise<void> {
  const r = await dockerExec(name, ["sh", "-c", script], user);
  if (r.code !== 0) throw new Error(`in ${name}: ${script}: ${r.stderr}`);
}

/** A workspace volume (no --local-dir) with these files written into it from inside the shed. */
async function volumeShed(label: string, files: Record<string, string>): Promise<string> {
  const name = uniqueName(label);
  resultOf(await op(server, "POST", "/api/sheds", { name }));
  for (const [path, content] of Object.entries(files)) {
    const r = await dockerExec(name, [
      "sh",
      "-c",
      'mkdir -p "$(dirname "/workspace/$1")" && printf %s "$2" > "/workspace/$1" && chmod 755 "/workspace/$1"',
      "sh",
      path,
      content,
    ]);
    if (r.code !== 0) throw new Error(`writing ${path}: ${r.stderr}`);
  }
  return name;
}

/** A git bundle of a repository with these files, uploaded; its id. */
async function uploadBundle(files: Record<string, string>): Promise<string> {
  const repo = workspace(files);
  const git = (...args: string[]) => {
    const r = spawnSync("git", [
      "-C",
      repo,
      "-c",
      "safe.directory=*",
      "-c",
      "user.name=t",
      "-c",
      "user.email=t@t",
      ...args,
    ]);
    if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  };
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "init");
  const file = join(repo, "..", `${RUN_PREFIX}-repo.bundle`);
  git("bundle", "create", "-q", file, "--all");
  // The bytes as they are (the api helper sends JSON).
  const res = await fetch(`${server.base}/api/bundles`, {
    method: "PUT",
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/octet-stream" },
    body: readFileSync(file),
  });
  const up = { status: res.status, body: (await res.json()) as { id: string } };
  if (up.status !== 201) throw new Error(`bundle upload: ${JSON.stringify(up.body)}`);
  return up.body.id;
}

describe("provision.yaml is read through the workspace volume", () => {
  it("stop and start with no hook to run make no exec; an edit made inside the shed is what the next stop uses", async () => {
    const name = await volumeShed("hostread", { ".shed/provision.yaml": "env:\n  GREETING: hi\n" });

    let stop: any[] = [];
    expect(await execsDuring(name, async () => (stop = await op(server, "POST", `/api/sheds/${name}/stop`)))).toEqual(
      [],
    );
    expect(stepEnd(stop, "provision_file")).toMatchObject({
      outcome: "succeeded",
      message: "hooks: none; 1 env variable",
    });
    expect(resultOf(stop).status).toBe("stopped");
    let start: any[] = [];
    expect(await execsDuring(name, async () => (start = await op(server, "POST", `/api/sheds/${name}/start`)))).toEqual(
      [],
    );
    expect(stepEnd(start, "credentials").message).toBe("0 copied credentials refreshed; known_hosts kept");
    expect(resultOf(start).status).toBe("running");

    // Edited inside the shed: the shutdown hook it now names runs at the next stop, with the new env.
    await inShed(
      name,
      'printf "env:\\n  GREETING: bye\\nhooks:\\n  shutdown: down.sh\\n" > /workspace/.shed/provision.yaml && printf "#!/bin/sh\\necho \\"\\$GREETING from shutdown\\" | tee /workspace/marker\\n" > /workspace/down.sh',
    );
    const execs = await execsDuring(name, async () => (stop = await op(server, "POST", `/api/sheds/${name}/stop`)));
    expect(execs).toHaveLength(1); // the hook's own
    expect(stepEnd(stop, "provision_file").message).toBe("hooks: shutdown; 1 env variable");
    expect(outputOf(stop, "shutdown_hook")).toBe("bye from shutdown\n");
    resultOf(await op(server, "POST", `/api/sheds/${name}/start`));
    expect(await guestFile(name, "/workspace/marker")).toBe("bye from shutdown\n");
  });

  it("never through a symlink the shed made: a link to a host file counts as the shed sees it", async () => {
    // On the host only: a provision naming a shutdown hook. In the shed these paths do not exist.
    const host = tempDir("hostprov");
    writeFileSync(join(host, "provision.yaml"), "hooks:\n  shutdown: host-only.sh\n");
    const name = await volumeShed("symlinks", {
      "inside.yaml": "hooks:\n  shutdown: down.sh\n",
      "down.sh": "#!/bin/sh\necho down\n",
    });

    const stopWith = async (setup: string) => {
      await inShed(name, `rm -rf /workspace/.shed && ${setup}`);
      const stop = await op(server, "POST", `/api/sheds/${name}/stop`);
      resultOf(stop);
      resultOf(await op(server, "POST", `/api/sheds/${name}/start`));
      return stop;
    };

    for (const setup of [
      `ln -s '${host}' /workspace/.shed`,
      `mkdir /workspace/.shed && ln -s '${host}/provision.yaml' /workspace/.shed/provision.yaml`,
    ]) {
      const stop = await stopWith(setup);
      expect(stepEnd(stop, "provision_file"), setup).toMatchObject({
        outcome: "skipped",
        message: "no .shed/provision.yaml in the workspace",
      });
      expect(stepEnd(stop, "shutdown_hook").outcome).toBe("skipped");
      expect(warningsOf(stop)).toEqual([]);
    }
    // A link that resolves inside the shed is followed there, as before.
    const stop = await stopWith("mkdir /workspace/.shed && ln -s ../inside.yaml /workspace/.shed/provision.yaml");
    expect(stepEnd(stop, "provision_file").message).toBe("hooks: shutdown; 0 env variables");
    expect(outputOf(stop, "shutdown_hook")).toBe("down\n");
  });
});

describe("create's install and clone", () => {
  const INSTALL =
    "#!/bin/bash\nif [ -e /workspace/add-path ]; then echo 'export PATH=\"$HOME/.tool/bin:$PATH\"' >> ~/.bashrc; fi\necho installed\n";
  const FILES = {
    ".shed/provision.yaml": "hooks:\n  install: install.sh\n  startup: startup.sh\n",
    "install.sh": INSTALL,
    "startup.sh": "#!/bin/sh\necho started\n",
  };

  it("an install that adds nothing to PATH: one exec each for readiness, clone and the two hooks, and no entry list", async () => {
    const name = uniqueName("noadd");
    const repo_bundle = await uploadBundle(FILES);
    let events: any[] = [];
    const execs = await execsDuring(name, async () => {
      events = await op(server, "POST", "/api/sheds", { name, repo_bundle, repo_label: "fast" });
    });
    expect(resultOf(events).status).toBe("running");
    expect(execs).toHaveLength(4);
    expect(stepEnd(events, "install_hook").outcome).toBe("succeeded");
    expect(stepEnd(events, "path_capture").message).toBe("the install added no PATH entries");
    expect(outputOf(events, "startup_hook")).toBe("started\n");
    const list = await dockerExec(name, ["test", "-e", "/var/lib/shed/installed-path"]);
    expect(list.code).toBe(1);
    expect((await guestFile(name, "/workspace/.git/config")) ?? "").not.toContain("[remote");
    expect((await dockerExec(name, ["test", "-e", "/tmp/shed-repo.bundle"])).code).toBe(1);
  });

  it("an install that added entries, run again adding none, takes them back", async () => {
    const name = uniqueName("takeback");
    const repo_bundle = await uploadBundle({ ...FILES, "add-path": "" });
    const events = await op(server, "POST", "/api/sheds", { name, repo_bundle, repo_label: "fast" });
    expect(stepEnd(events, "path_capture").message).toBe("install added /home/shed/.tool/bin");
    expect(await guestFile(name, "/var/lib/shed/installed-path")).toBe("/home/shed/.tool/bin\n");

    await inShed(name, "rm /workspace/add-path && sed -i '/.tool\\/bin/d' ~/.bashrc");
    const again = await op(server, "POST", `/api/sheds/${name}/provision`, {});
    expect(stepEnd(again, "path_capture").message).toBe("the install added no PATH entries");
    expect(await guestFile(name, "/var/lib/shed/installed-path")).toBe("");
    expect((await getPath(name)).split(":")).not.toContain("/home/shed/.tool/bin");
  });

  it("a workspace kept from an earlier shed is not cloned over, and the bundle does not stay behind", async () => {
    const name = uniqueName("keptclone");
    resultOf(
      await op(server, "POST", "/api/sheds", { name, repo_bundle: await uploadBundle(FILES), repo_label: "fast" }),
    );
    await inShed(name, "echo mine > /workspace/install.sh");
    await op(server, "DELETE", `/api/sheds/${name}?keep_volume=true`);
    const events = await op(server, "POST", "/api/sheds", {
      name,
      repo_bundle: await uploadBundle(FILES),
      repo_label: "fast",
    });
    expect(stepEnd(events, "clone")).toMatchObject({
      outcome: "skipped",
      message: "the workspace already has files (kept from an earlier shed); not cloned over them",
    });
    expect(await guestFile(name, "/workspace/install.sh")).toBe("mine\n");
    expect((await dockerExec(name, ["test", "-e", "/tmp/shed-repo.bundle"])).code).toBe(1);
  });
});

async function getPath(name: string): Promise<string> {
  const r = await dockerExec(name, ["bash", "--login", "-c", 'printf %s "$PATH"']);
  return r.stdout;
}

describe("the install state file, read by the install's own run", () => {
  const image = `shed-test-installed:${RUN_PREFIX}`;
  afterAll(async () => {
    await docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => {});
  });

  it("an image that records a completed install: create skips the install, its record and log untouched", async () => {
    // An image made from a shed whose install ran: the state file is in it.
    const from = await volumeShed("stateimg", {});
    await inShed(from, 'printf \'{"completed_at":"2020-01-01T00:00:00Z"}\\n\' > /var/lib/shed/install.done');
    const [repo, tag] = image.split(":");
    await docker.getContainer(`shed-${from}`).commit({ repo, tag });

    const name = uniqueName("stateskip");
    const repo_bundle = await uploadBundle({
      ".shed/provision.yaml": "hooks:\n  install: install.sh\n",
      "install.sh": "#!/bin/sh\necho ran > /workspace/install-ran\n",
    });
    const events = await op(server, "POST", "/api/sheds", { name, repo_bundle, repo_label: "fast", image });
    expect(stepEnd(events, "install_hook")).toMatchObject({
      outcome: "skipped",
      message: "already ran (the state file records it)",
    });
    expect(warningsOf(events)).toEqual([]);
    expect((await hooksOf(server, name)).install.state).toBe("never_run");
    expect((await dockerExec(name, ["test", "-e", "/workspace/install-ran"])).code).toBe(1);
    expect((await dockerExec(name, ["test", "-e", "/var/log/shed/install.log"])).code).toBe(1);
  });
});
