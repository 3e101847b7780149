/**
 * Sizing a shed (`shed create --cpus --memory --disk`) through the packaged CLI against a real
 * server and the real Docker engine: the limits land on the container (docker inspect) and in
 * `shed list -v` / `--json`; sizes the server refuses make nothing (no container, volume or VM
 * instance; the QEMU refusals happen before any VM boots); and a shed made before sizes were
 * recorded (the previous label set) still lists, stops and starts.
 * Budget: about 1 minute (three Docker sheds, no VM boot).
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, show } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { containerExists, docker, dockerExec, volumeExists } from "../helpers/docker.js";
import { earlierVersionShed } from "../helpers/earlier-shed.js";
import { uniqueName } from "../helpers/names.js";
import type { TestServer } from "../helpers/server.js";

const IMAGES = process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";

let server: TestServer;
let user: CliUser;
useCliServer(
  (s, u) => {
    server = s;
    user = u;
  },
  // QEMU is enabled so its refusals can be checked; none of these tests boots a VM.
  { enabled_backends: ["docker", "qemu"], vm_images_dir: IMAGES },
);

const made: string[] = [];
afterAll(async () => {
  for (const name of made) if (await containerExists(name)) await user.run(["delete", name, "--force"]);
});

/** The row of `shed list -v` for a shed, split on runs of spaces, with the header's column names as keys. */
async function listRow(name: string): Promise<Record<string, string>> {
  const out = (await cliOk(user, ["list", "-v"])).stdout.split("\n");
  const header = (out[0] ?? "").trim().split(/\s{2,}/);
  const line = out.find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${name} is not in shed list -v:\n${out.join("\n")}`);
  const cells = line.trim().split(/\s{2,}/);
  // SOURCE is empty for these sheds: the last two cells are CPUS and MEMORY.
  return {
    NAME: cells[0] as string,
    CPUS: cells.at(-2) as string,
    MEMORY: cells.at(-1) as string,
    header: header.join("|"),
  };
}

async function listedJson(name: string): Promise<Record<string, unknown> | undefined> {
  return json(await cliOk(user, ["--json", "list"])).sheds.find((s: { name: string }) => s.name === name);
}

describe("shed create --cpus --memory on Docker", () => {
  it("makes a container with those limits, shown by shed list -v and --json", async () => {
    const name = uniqueName("sized");
    made.push(name);
    await cliOk(user, ["create", name, "--cpus", "1", "--memory", "256", "--no-provision", "--no-sync"]);
    const info = await docker.getContainer(`shed-${name}`).inspect();
    expect(info.HostConfig.NanoCpus).toBe(1_000_000_000);
    expect(info.HostConfig.Memory).toBe(256 * 1024 ** 2);
    const row = await listRow(name);
    expect(row.header).toContain("CPUS|MEMORY");
    expect(row).toMatchObject({ CPUS: "1", MEMORY: "256 MiB" });
    expect(await listedJson(name)).toMatchObject({ cpus: 1, memory_mib: 256 });
    expect((await cliOk(user, ["show", name])).stdout).toContain("\n  size: 1 CPU, 256 MiB\n");
    // The limit is the engine's: the shed still runs commands under it.
    expect((await dockerExec(name, ["true"])).code).toBe(0);
  });

  it("without them makes a container with no limit, listed as -", async () => {
    const name = uniqueName("unsized");
    made.push(name);
    await cliOk(user, ["create", name, "--no-provision", "--no-sync"]);
    const info = await docker.getContainer(`shed-${name}`).inspect();
    expect(info.HostConfig.NanoCpus ?? 0).toBe(0);
    expect(info.HostConfig.Memory ?? 0).toBe(0);
    expect(await listRow(name)).toMatchObject({ CPUS: "-", MEMORY: "-" });
    const listed = await listedJson(name);
    expect(listed).toBeDefined();
    expect(listed && "cpus" in listed).toBe(false);
    expect((await cliOk(user, ["show", name])).stdout).not.toContain("size:");
  });
});

describe("sizes that are refused make nothing", () => {
  const hostCpus = cpus().length;
  const hostMiB = Math.floor(totalmem() / 1024 ** 2);

  async function refusedCreate(args: string[], expected: RegExp): Promise<void> {
    const name = uniqueName("refused");
    const res = await user.run(["create", name, ...args, "--no-provision", "--no-sync"]);
    expect(res.code, show(res)).not.toBe(0);
    expect(res.stderr).toMatch(expected);
    expect(await containerExists(name)).toBe(false);
    expect(await volumeExists(name)).toBe(false);
    expect(existsSync(join(server.dir, "data", "vm", name))).toBe(false);
    expect(await listedJson(name)).toBeUndefined();
  }

  it("below the minimum", async () => {
    await refusedCreate(["--cpus", "0"], /--cpus 0: cpus must be a whole number of at least 1/);
    await refusedCreate(["--backend", "qemu", "--memory", "64"], /--memory 64: a qemu VM needs at least 128 MiB/);
  });

  it("above what the host has, with both numbers", async () => {
    await refusedCreate(
      ["--cpus", String(hostCpus + 1)],
      new RegExp(`--cpus ${hostCpus + 1} is more than this host has: ${hostCpus} CPU`),
    );
    await refusedCreate(
      ["--backend", "qemu", "--memory", String(hostMiB + 1)],
      new RegExp(`--memory ${hostMiB + 1} MiB is more than this host has: ${hostMiB} MiB`),
    );
  });

  it("a value that is not a whole number, named with its flag (the CLI's check, then the server's)", async () => {
    await refusedCreate(["--memory", "1.5"], /--memory "1\.5" is not a whole number/);
    const name = uniqueName("refused");
    const res = await server.api("POST", "/api/sheds", { name, cpus: 1.5 });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain("--cpus 1.5: cpus must be a whole number");
    expect(await containerExists(name)).toBe(false);
  });

  it("--disk on Docker, and a VM disk smaller than its image", async () => {
    await refusedCreate(["--disk", "20"], /--disk 20: the docker backend cannot limit a shed's disk/);
    await refusedCreate(
      ["--backend", "qemu", "--disk", "1"],
      /--disk 1: the disk would be smaller than the image's root filesystem/,
    );
  });
});

describe("a shed made before sizes were recorded", () => {
  it("lists without a size, and stops and starts", async () => {
    const name = uniqueName("oldsize");
    made.push(name);
    const serverId = readFileSync(join(server.dir, "data", "server_id"), "utf8").trim();
    // The previous version's label set: its server id, no dev.shed.cpus / dev.shed.memory-mib.
    const own = { "dev.shed.managed": "true", "dev.shed.name": name, "dev.shed.server-id": serverId };
    await earlierVersionShed(name, own, { volumeCreatedAt: true });

    expect(await listRow(name)).toMatchObject({ CPUS: "-", MEMORY: "-" });
    expect(await listedJson(name)).toMatchObject({ name, status: "running", owner: "this_server" });
    await cliOk(user, ["stop", name]);
    expect(await listedJson(name)).toMatchObject({ status: "stopped" });
    await cliOk(user, ["start", name]);
    expect(await listedJson(name)).toMatchObject({ status: "running" });
    expect((await cliOk(user, ["exec", name, "--", "echo", "still-here"])).stdout).toContain("still-here");
  });
});
