import { randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import { c as packTar } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { containerExists, docker, volumeExists } from "../helpers/docker.js";
import { makeGitRepo } from "../helpers/host.js";
import { type LocalRegistry, startLocalRegistry } from "../helpers/local-registry.js";
import { uniqueName } from "../helpers/names.js";
import { guestFile } from "../helpers/provision.js";

/**
 * devcontainer.json's `image` pulled for real (issue 13): the engine has no
 * registry it can reach here, so the test serves one image from a registry of
 * its own on loopback (helpers/local-registry.ts), made from an image FROM
 * shed-base:latest with a marker file of this run's own; the image is removed
 * from the engine before the create, so the create must pull it, through the
 * real engine, and the shed runs it. Time budget: about 1 minute on 2 busy
 * cores (saving and gzipping shed-base's layers, the engine's pull and
 * extraction, two small sheds).
 */
let cli: CliUser;
useCliServer((_s, user) => {
  cli = user;
});

const TAG = `run-${randomBytes(4).toString("hex")}`;
const SOURCE = `shed-test-pull-source:${TAG}`;
const MARKER = `pulled-${TAG}\n`;
let registry: LocalRegistry;

async function removeImage(ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove({ force: true })
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
}

async function imageExists(ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  const ctx = tempDir("pull-src");
  writeFileSync(join(ctx, "Dockerfile"), "FROM shed-base:latest\nCOPY marker /etc/marker\n");
  writeFileSync(join(ctx, "marker"), MARKER);
  packTar({ cwd: ctx, file: join(ctx, "context.tar"), sync: true }, ["Dockerfile", "marker"]);
  const stream = await docker.buildImage(createReadStream(join(ctx, "context.tar")), { t: SOURCE });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, events: { error?: string }[]) => {
      const failed = events?.find((e) => e.error);
      if (err || failed) reject(err ?? new Error(`build of ${SOURCE} failed: ${failed?.error}`));
      else resolve();
    }),
  );
  registry = await startLocalRegistry({
    sourceImage: SOURCE,
    repository: "shed-test/pulled",
    tag: TAG,
    workDir: tempDir("registry"),
  });
  // Neither the source nor the reference may be on the engine: the engine skips a pull whose image (config) it already has.
  await removeImage(SOURCE);
  await removeImage(registry.reference);
}, 120_000);

afterAll(async () => {
  await registry?.close();
  if (registry) await removeImage(registry.reference);
  await removeImage(SOURCE);
});

describe("a devcontainer.json image the engine does not have", () => {
  const first = uniqueName("dcpull");
  const second = uniqueName("dcpull");

  function repo(): string {
    return makeGitRepo({
      ".devcontainer.json": JSON.stringify({
        image: registry.reference,
        onCreateCommand: "cat /etc/marker > /tmp/ran",
      }),
    });
  }

  it("is pulled from its registry at create, the pull streamed, and the shed runs it", async () => {
    expect(await imageExists(registry.reference)).toBe(false);
    const created = await cliOk(cli, ["create", first, "--repo", repo(), "--no-sync"]);
    const out = created.stderr;
    expect(out).toContain(`[shed] ${registry.reference} is not on the engine: pulling it`);
    // The engine's own progress, one line per layer and status change, a layer named as the engine names it (its
    // blob digest's first 12 hex digits). This run's own layer (the marker's, the top one) is new to the engine, so
    // it is really downloaded; shed-base's below may be known to the engine from an earlier run ("Already exists").
    const short = (digest: string) => digest.slice("sha256:".length, "sha256:".length + 12);
    const top = registry.layerDigests[registry.layerDigests.length - 1] ?? "";
    for (const line of ["Pulling fs layer", "Download complete", "Extracting", "Pull complete"]) {
      expect(out).toContain(`${short(top)}: ${line}\n`);
    }
    for (const digest of registry.layerDigests)
      expect(out).toMatch(new RegExp(`${short(digest)}: (Pull complete|Already exists)\n`));
    expect(out).toContain(`Status: Downloaded newer image for ${registry.reference}`);
    expect(out).toContain(`image ${registry.reference} pulled`);

    // The engine fetched it from this registry: the manifest, the config and this run's own layer.
    expect(registry.served("manifests").length).toBeGreaterThanOrEqual(1);
    const blobs = registry.served("blobs");
    expect(blobs.some((p) => p.endsWith(registry.configDigest))).toBe(true);
    expect(blobs.some((p) => p.endsWith(top))).toBe(true);
    expect(await imageExists(registry.reference)).toBe(true);

    const status = json(await cliOk(cli, ["--json", "status", first]));
    expect(status.image).toBe(registry.reference);
    expect(await guestFile(first, "/etc/marker")).toBe(MARKER);
    expect(await guestFile(first, "/tmp/ran")).toBe(MARKER);
  });

  it("is not pulled again once the engine has it", async () => {
    const before = registry.requests.length;
    const created = await cliOk(cli, ["create", second, "--repo", repo(), "--no-sync"]);
    expect(created.stderr).not.toContain("pulling it");
    expect(created.stderr).not.toContain("Pull complete");
    expect(registry.requests.length).toBe(before);
    expect(json(await cliOk(cli, ["--json", "status", second])).image).toBe(registry.reference);
    expect(await guestFile(second, "/tmp/ran")).toBe(MARKER);
  });

  it("a tag the registry does not have fails the create with the engine's reason, and leaves nothing", async () => {
    const name = uniqueName("dcpull");
    const missing = `${registry.address}/shed-test/pulled:not-${TAG}`;
    const repoDir = makeGitRepo({ ".devcontainer.json": JSON.stringify({ image: missing }) });
    const res = await cli.run(["create", name, "--repo", repoDir, "--no-sync"]);
    expect(res.code, show(res)).not.toBe(0);
    expect(res.stderr).toContain(`${missing} is not on the engine: pulling it`);
    // The engine's reason as the engine words it, without dockerode's "(HTTP code 404) unexpected - " before it.
    expect(res.stderr).toContain(
      `image "${missing}" is not on this server and could not be pulled: manifest for ${missing} not found: manifest unknown`,
    );
    expect(res.stderr).not.toContain("HTTP code");
    expect(res.stderr).toContain("check the name and tag in devcontainer.json's image");
    expect(registry.requests).toContainEqual({
      method: "HEAD",
      path: `/v2/shed-test/pulled/manifests/not-${TAG}`,
      status: 404,
    });
    expect((await cli.run(["status", name])).code).not.toBe(0);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
  });
});
