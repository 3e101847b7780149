/**
 * `shed image build|list|delete|prune` through the packaged CLI, on the real engine and a real QEMU
 * boot (TCG). A Dockerfile.shed FROM shed-base adds a marker file; the one name gives a Docker shed
 * its image and a QEMU shed its ext4 root filesystem, both see the marker.
 * Budget: about 6 minutes: the VM layer (apt: kernel, initramfs) over the new image ~1.5 min, the
 * export and mkfs ~30 s, one QEMU boot ~1-2 min; the Docker-only server's build is cached (seconds).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, newCliUser, show, tempDir } from "../helpers/cli.js";
import { addServerAs, useCliServer } from "../helpers/cli-server.js";
import { docker, dockerExec } from "../helpers/docker.js";
import { uniqueName } from "../helpers/names.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { removeVmDataDir } from "../helpers/vm.js";

const imagesDir = mkdtempSync(join("/tmp", "shed-img-"));
const image = uniqueName("img");
const other = uniqueName("img2");
const marker = `marker of ${image}`;

let server: TestServer;
let user: CliUser;
useCliServer(
  (s, u) => {
    server = s;
    user = u;
  },
  {
    enabled_backends: ["docker", "qemu"],
    vm_images_dir: imagesDir,
    vm_memory: "1GiB",
    start_timeout: "240s",
    stop_timeout: "30s",
  },
);

const context = tempDir("image-ctx");
// Dockerfile.shed comes before Dockerfile: the decoy would fail the build.
writeFileSync(
  join(context, "Dockerfile.shed"),
  `FROM shed-base:latest\nCOPY marker.txt /etc/shed-image-marker\nRUN echo built-by-run-step\n`,
);
writeFileSync(join(context, "Dockerfile"), "FROM shed-base:latest\nRUN false\n");
writeFileSync(join(context, "marker.txt"), `${marker}\n`);

afterAll(async () => {
  // A QEMU left by a failed test goes with its instance directory.
  if (server) {
    await server.close();
    await removeVmDataDir(join(server.dir, "data"));
  }
  for (const ref of [`${image}:latest`, `${image}:vm-x86_64`, `${other}:latest`]) {
    await docker
      .getImage(ref)
      .remove({ force: true })
      .catch(() => {});
  }
  rmSync(imagesDir, { recursive: true, force: true });
}, 120_000);

const dockerShed = uniqueName("imgd");
const vmShed = uniqueName("imgq");

describe("shed image", () => {
  let built: any;

  it("builds Dockerfile.shed into a Docker image and a VM image, streaming the build output", async () => {
    const res = await user.run(["--json", "image", "build", context, "--name", image]);
    expect(res.code, show(res)).toBe(0);
    // docker build's own output, then build-vm-image.sh's, as they came.
    expect(res.stderr).toContain("built-by-run-step");
    expect(res.stderr).toMatch(/build-vm-image: \[\d+s\] making rootfs\.ext4/);
    built = json(res);
    expect(built.name).toBe(image);
    expect(built.kind).toBe("built");
    expect(built.docker.ref).toBe(`${image}:latest`);
    expect(built.vm.dir.startsWith(join(imagesDir, "builds", `${image}-x86_64-`))).toBe(true);
    for (const f of ["rootfs.ext4", "vmlinuz", "initrd.img", "manifest.json"]) {
      expect(existsSync(join(built.vm.dir, f)), f).toBe(true);
    }
  }, 900_000);

  it("a second build of the same context is a cache hit: nothing is rebuilt", async () => {
    const res = await user.run(["--json", "image", "build", context, "--name", image]);
    expect(res.code, show(res)).toBe(0);
    expect(res.stderr).toMatch(/cache hit: this context was built into/);
    expect(res.stderr).toMatch(/cache hit: the VM image .* was made from this build/);
    expect(res.stderr).not.toContain("built-by-run-step");
    const again = json(res);
    expect(again.docker.id).toBe(built.docker.id);
    expect(again.vm.dir).toBe(built.vm.dir);
  }, 120_000);

  it("the name gives a Docker shed the Docker image and a QEMU shed the VM image; both see the marker", async () => {
    await cliOk(user, ["create", dockerShed, "--image", image, "--backend", "docker", "--no-sync"]);
    const inDocker = await dockerExec(dockerShed, ["cat", "/etc/shed-image-marker"]);
    expect(inDocker.stdout.trim()).toBe(marker);

    await cliOk(user, ["create", vmShed, "--image", image, "--backend", "qemu", "--no-sync"]);
    const shed = json(await cliOk(user, ["--json", "show", vmShed]));
    expect(shed.image).toBe(built.vm.dir);
    const inVm = await cliOk(user, ["exec", vmShed, "cat", "/etc/shed-image-marker"]);
    expect(inVm.stdout.trim()).toBe(marker);
  }, 600_000);

  it("list shows the image with its source, size and the sheds that use it", async () => {
    const listed = json(await cliOk(user, ["--json", "image", "list"])).images;
    const mine = listed.find((i: any) => i.name === image);
    expect(mine.source).toBe(`${context} (Dockerfile.shed)`);
    expect(mine.docker.bytes).toBeGreaterThan(0);
    expect(mine.vm.bytes).toBeGreaterThan(0);
    expect(mine.sheds.sort()).toEqual([dockerShed, vmShed].sort());
    const table = await cliOk(user, ["image", "list"]);
    expect(table.stdout).toMatch(/^NAME\s+SOURCE\s+SIZE\s+SHEDS/);
    expect(table.stdout).toContain(image);
  });

  it("delete is refused while a shed uses the image (naming the sheds), and done once none does", async () => {
    const refused = await user.run(["--json", "image", "delete", image]);
    expect(refused.code).not.toBe(0);
    const err = JSON.parse(refused.stdout || refused.stderr).error;
    expect(err.code).toBe("IMAGE_IN_USE");
    expect(err.message).toContain(dockerShed);
    expect(err.message).toContain(vmShed);
    expect(existsSync(join(built.vm.dir, "rootfs.ext4"))).toBe(true);

    await cliOk(user, ["delete", "--force", dockerShed]);
    await cliOk(user, ["delete", "--force", vmShed]);
    const done = json(await cliOk(user, ["--json", "image", "delete", image]));
    expect(done.removed).toContain(`Docker image ${image}:latest`);
    await expect(docker.getImage(`${image}:latest`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(existsSync(join(imagesDir, `${image}-x86_64`))).toBe(false);
    expect(existsSync(built.vm.dir)).toBe(false);
  }, 300_000);
});

describe("shed image prune (a Docker-only server)", () => {
  let dockerOnly: TestServer;
  let cli: CliUser;

  it("builds only the Docker image, and says why", async () => {
    dockerOnly = await startTestServer({ enabled_backends: ["docker"] });
    cli = newCliUser();
    await addServerAs(cli, dockerOnly, "dockeronly");
    const res = await cli.run(["--json", "image", "build", context, "--name", other]);
    expect(res.code, show(res)).toBe(0);
    expect(res.stderr).toContain("no VM backend is enabled on this server");
    expect(json(res).vm).toBeUndefined();
  }, 300_000);

  it("never builds over an image it did not build: the config's default, or a user's own tag", async () => {
    const own = uniqueName("own");
    await docker.getImage("shed-base:latest").tag({ repo: own, tag: "latest" });
    try {
      const refusals: [string, string][] = [
        ["shed-base", "is the server's own (config default_image)"],
        [own, `the Docker image ${own}:latest exists and was not built by shed image build`],
      ];
      for (const [name, says] of refusals) {
        const res = await cli.run(["--json", "image", "build", context, "--name", name]);
        expect(res.code, show(res)).not.toBe(0);
        expect(JSON.parse(res.stdout).error.message).toContain(says);
      }
      // The user's tag still names the image it named.
      expect((await docker.getImage(`${own}:latest`).inspect()).Id).toBe(
        (await docker.getImage("shed-base:latest").inspect()).Id,
      );
    } finally {
      await docker
        .getImage(`${own}:latest`)
        .remove()
        .catch(() => {});
    }
  }, 120_000);

  it("prune --dry-run lists an unused image without removing it; prune removes it", async () => {
    const dry = json(await cliOk(cli, ["--json", "image", "prune", "--dry-run"]));
    expect(dry.dry_run).toBe(true);
    expect(dry.removed).toContain(`image ${other} (${context})`);
    await docker.getImage(`${other}:latest`).inspect();

    const pruned = json(await cliOk(cli, ["--json", "image", "prune"]));
    expect(pruned.removed).toContain(`Docker image ${other}:latest`);
    await expect(docker.getImage(`${other}:latest`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    // The server's default image is the config's: never pruned.
    await docker.getImage("shed-base:latest").inspect();
    const after = json(await cliOk(cli, ["--json", "image", "list"])).images;
    expect(after.map((i: any) => i.name)).not.toContain(other);
  }, 120_000);
});
