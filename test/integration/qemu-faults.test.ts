/**
 * The QEMU backend's server state and failures, for real (TCG: no /dev/kvm here), through the
 * packaged server and CLI: a server SIGKILLed under a running VM and the next one re-attaching
 * (list, exec, live credential sync); a QEMU killed behind Shed's back reported stopped and
 * started again with its workspace; `delete --keep-volume` keeping the VM's disk; a create killed
 * at `storage` or `start` undone at the next start; refusals that make nothing (a refused --local-dir, a
 * missing image, no qemu-system-x86_64 on the server's PATH).
 * Budget: at most 4 minutes on 2 cores (65 to 105 s measured while a CI run shared the machine):
 * three VM boots under TCG (one shed shared by the first three tests, one left booted by a killed
 * create) and about twelve starts of the packaged server.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, newCliUser, REPO_ROOT, show, tempDir } from "../helpers/cli.js";
import { uniqueName } from "../helpers/names.js";
import { type PackagedServer, serverConfig, startPackaged, stopAllPackaged } from "../helpers/packaged-server.js";
import { waitFor } from "../helpers/provision.js";
import { processesUnder } from "../helpers/vm.js";

const IMAGES = process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";

const dir = tempDir("qfault");
const dataDir = join(dir, "data");
const credDir = tempDir("qfault-cred");
const token = join(credDir, "token");
writeFileSync(token, "token-from-host\n", { mode: 0o600 });

const QEMU_CONFIG = {
  enabled_backends: ["docker", "qemu"],
  vm_images_dir: IMAGES,
  vm_memory: "1GiB",
  start_timeout: "240s",
  stop_timeout: "30s",
};

let config: string;
let server: PackagedServer;
let user: CliUser;
/** Every data dir of this file: their VMs are killed at the end whatever happened. */
const dataDirs = [dataDir];

const shared = uniqueName("qf");

/** Two free loopback ports, so a restarted server is where the CLI's config says. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer();
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** QEMU and pasta of this file's VMs (of one shed when named): each names a file in its instance directory. */
function vmProcesses(name?: string): string[] {
  return processesUnder(name ? [join(dataDir, "vm", name, "")] : dataDirs.map((d) => join(d, "vm", "")));
}

const instanceDir = (name: string) => join(dataDir, "vm", name);
const instanceMeta = (name: string) => JSON.parse(readFileSync(join(instanceDir(name), "instance.json"), "utf8"));
const hypervisorPid = (name: string): number => instanceMeta(name).hypervisor.pid;
/** QEMU's and pasta's pids as the instance records them, sorted like vmProcesses' answer. */
const recordedPids = (name: string): string[] => {
  const m = instanceMeta(name);
  return [m.hypervisor.pid, m.helpers.net.pid].map(String).sort();
};
const record = (name: string) => join(dataDir, "sheds", `${name}.json`);

async function listed(name: string): Promise<any> {
  return json(await cliOk(user, ["--json", "list"])).sheds.find((s: { name: string }) => s.name === name);
}

/** A failed wait on the live sync says what the server logged (its warnings are where sync failures go). */
function withServerLog(err: Error): never {
  throw new Error(`${err.message}; shed-server's stderr:\n${server.stderr()}`);
}

async function guestCat(name: string, path: string): Promise<string> {
  return (await user.run(["exec", name, "--", "cat", path])).stdout;
}

/** Starts a server with SHED_FAULT_KILL_AT, runs `shed create NAME --backend qemu` on it, and expects it SIGKILLed. */
async function createKilledAt(fault: string, name: string): Promise<void> {
  await server.stop();
  const faulted = await startPackaged(config, { SHED_FAULT_KILL_AT: fault });
  const res = await user.run(["create", name, "--backend", "qemu"]);
  expect(await faulted.exited, show(res)).toEqual({ code: null, signal: "SIGKILL" });
  expect(res.code).not.toBe(0);
}

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, "dist", "shed-server.mjs"))) throw new Error("run `npm run build` first");
  const [http, ssh] = await freePorts(2);
  config = serverConfig(dir, {
    ...QEMU_CONFIG,
    http_port: http,
    ssh_port: ssh,
    credentials: { tool: { source: credDir, target: "/home/shed/.config/tool" } },
  });
  server = await startPackaged(config);
  user = newCliUser();
  const add = await user.run(
    ["server", "add", "127.0.0.1", "--port", String(http), "--name", "dev", "--token-file", "-"],
    { input: `${server.token}\n` },
  );
  expect(add.code, show(add)).toBe(0);
});

afterAll(async () => {
  await stopAllPackaged();
  // Whatever a failed test left running; the directories go with the temp dirs.
  for (const pid of vmProcesses()) process.kill(Number(pid), "SIGKILL");
  await waitFor("every QEMU and pasta of this file gone", async () => vmProcesses().length === 0, 30_000);
});

describe("the qemu backend across server crashes and processes dying", () => {
  it("a server SIGKILLed under a running VM: the next one re-attaches (list, exec, live credential sync both ways)", async () => {
    const create = await user.run(["create", shared, "--backend", "qemu"]);
    expect(create.code, show(create)).toBe(0);
    await cliOk(user, ["exec", shared, "--", "sh", "-c", "echo kept > /workspace/state.txt"]);
    const qemu = hypervisorPid(shared);
    const processes = recordedPids(shared);
    expect(vmProcesses(shared).sort()).toEqual(processes);

    server.proc.kill("SIGKILL");
    expect(await server.exited).toEqual({ code: null, signal: "SIGKILL" });
    // QEMU and pasta live in sessions of their own: the server's death is not theirs.
    expect(vmProcesses(shared).sort()).toEqual(processes);

    server = await startPackaged(config);
    expect(server.stderr()).not.toContain("not resumed");
    expect(await listed(shared)).toMatchObject({ backend: "qemu", status: "running" });
    expect(await guestCat(shared, "/workspace/state.txt")).toBe("kept\n");
    expect(hypervisorPid(shared)).toBe(qemu);

    writeFileSync(token, "changed-after-restart\n");
    await waitFor(
      "the host's change in the VM",
      async () => (await guestCat(shared, "/home/shed/.config/tool/token")) === "changed-after-restart\n",
      60_000,
    ).catch(withServerLog);
    await cliOk(user, ["exec", shared, "--", "sh", "-c", "echo from-vm > ~/.config/tool/after-restart"]);
    await waitFor(
      "the VM's new file on the host",
      async () => existsSync(join(credDir, "after-restart")),
      60_000,
    ).catch(withServerLog);
    expect(readFileSync(join(credDir, "after-restart"), "utf8")).toBe("from-vm\n");
  }, 400_000);

  it("QEMU killed behind Shed's back: list says stopped, and start boots it again with the workspace", async () => {
    // A killed QEMU is a power cut: what the guest had not written back yet is lost (ext4's journal keeps
    // the file system whole). The workspace kept is what was on the disk.
    await cliOk(user, ["exec", shared, "--", "sync"]);
    const qemu = hypervisorPid(shared);
    process.kill(qemu, "SIGKILL");
    await waitFor("QEMU dead", async () => !vmProcesses(shared).includes(String(qemu)), 10_000);

    expect(await listed(shared)).toMatchObject({ backend: "qemu", status: "stopped" });
    // Its network helper serves nothing now: reconciling ended it.
    expect(vmProcesses(shared)).toEqual([]);
    expect(instanceMeta(shared)).toMatchObject({
      hypervisor: null,
      last_stop: "died",
    });

    const start = await user.run(["start", shared]);
    expect(start.code, show(start)).toBe(0);
    expect(await listed(shared)).toMatchObject({ status: "running" });
    expect(hypervisorPid(shared)).not.toBe(qemu);
    expect(await guestCat(shared, "/workspace/state.txt")).toBe("kept\n");
  }, 400_000);

  it("delete --keep-volume keeps the VM's disk under <data_dir>/vm/kept and says where", async () => {
    const del = await user.run(["delete", shared, "--keep-volume", "--force"]);
    expect(del.code, show(del)).toBe(0);
    const kept = /kept as (\S+\.qcow2)/.exec(del.stderr)?.[1];
    expect(kept, del.stderr).toBeDefined();
    expect(kept?.startsWith(join(dataDir, "vm", "kept", ""))).toBe(true);
    // A qcow2 image (magic "QFI\xfb"), the overlay that holds the workspace.
    expect(readFileSync(kept as string).subarray(0, 4)).toEqual(Buffer.from([0x51, 0x46, 0x49, 0xfb]));
    expect(existsSync(instanceDir(shared))).toBe(false);
    expect(vmProcesses(shared)).toEqual([]);
    expect(await listed(shared)).toBeUndefined();
  }, 120_000);

  it("a create killed after its VM booted (step start) is undone at the next start: no process, no instance dir", async () => {
    const name = uniqueName("qf-start");
    await createKilledAt("create:start:after", name);
    // The fault left what it should: a booted VM (QEMU and pasta) of a create nobody finished.
    expect(vmProcesses(name).sort()).toEqual(recordedPids(name));

    server = await startPackaged(config);
    expect(server.stderr()).toContain(
      `shed-server: recovery: create of ${name} was interrupted at step start (shed-server stopped): what it had made is removed`,
    );
    expect(vmProcesses(name)).toEqual([]);
    expect(existsSync(instanceDir(name))).toBe(false);
    expect(existsSync(record(name))).toBe(false);
    expect(await listed(name)).toBeUndefined();
  }, 400_000);

  it("a create killed after storage (instance dir made, no VM) is undone at the next start", async () => {
    const name = uniqueName("qf-storage");
    await createKilledAt("create:storage:after", name);
    expect(existsSync(join(instanceDir(name), "instance.json"))).toBe(true);
    expect(vmProcesses(name)).toEqual([]);

    server = await startPackaged(config);
    expect(server.stderr()).toContain(
      `shed-server: recovery: create of ${name} was interrupted at step storage (shed-server stopped): what it had made is removed`,
    );
    expect(existsSync(instanceDir(name))).toBe(false);
    expect(existsSync(record(name))).toBe(false);
  }, 120_000);

  it("a create killed inside storage, before the instance's metadata was written, leaves no instance dir either", async () => {
    const name = uniqueName("qf-nometa");
    await createKilledAt("create:storage:after", name);
    // What a kill during qemu-img leaves: the directory and its disks, no instance.json yet (written last).
    rmSync(join(instanceDir(name), "instance.json"));

    server = await startPackaged(config);
    expect(server.stderr()).toContain(`shed-server: recovery: create of ${name} was interrupted at step storage`);
    expect(existsSync(instanceDir(name))).toBe(false);
    expect(existsSync(record(name))).toBe(false);
  }, 120_000);

  it("a --local-dir the rules refuse is refused on the qemu backend before anything is made", async () => {
    const name = uniqueName("qf-local");
    const res = await user.run(["create", name, "--backend", "qemu", "--local-dir", "/etc"]);
    expect(res.code, show(res)).not.toBe(0);
    expect(res.stderr).toContain("--local-dir /etc is refused");
    expect(existsSync(instanceDir(name))).toBe(false);
    expect(existsSync(record(name))).toBe(false);
    expect(await listed(name)).toBeUndefined();
  });
});

describe("the qemu backend fails fast", () => {
  it("create with no VM image: IMAGE_NOT_FOUND with the build hint, nothing made", async () => {
    const d = tempDir("qfault-noimg");
    dataDirs.push(join(d, "data"));
    const noImage = await startPackaged(serverConfig(d, { ...QEMU_CONFIG, vm_images_dir: tempDir("qfault-images") }));
    const add = await user.run(
      ["server", "add", "127.0.0.1", "--port", String(noImage.httpPort), "--name", "noimg", "--token-file", "-"],
      { input: `${noImage.token}\n` },
    );
    expect(add.code, show(add)).toBe(0);
    const name = uniqueName("qf-noimg");
    const res = await user.run(["--server", "noimg", "--json", "create", name, "--backend", "qemu"]);
    expect(res.code, show(res)).not.toBe(0);
    expect(show(res)).toContain("IMAGE_NOT_FOUND");
    expect(show(res)).toContain("npm run build-vm-image");
    expect(existsSync(join(d, "data", "vm", name))).toBe(false);
    expect(existsSync(join(d, "data", "sheds", `${name}.json`))).toBe(false);
    await noImage.stop();
  });

  it("a server whose config enables qemu but whose PATH has no qemu-system-x86_64 exits at start saying what to install", async () => {
    // Everything on this PATH but QEMU itself, so nothing else can be what fails.
    const bin = tempDir("qfault-bin");
    const linked = new Set(["qemu-system-x86_64"]);
    for (const d of (process.env.PATH ?? "").split(delimiter)) {
      if (!d || !existsSync(d)) continue;
      for (const entry of readdirSync(d)) {
        if (linked.has(entry)) continue;
        linked.add(entry);
        symlinkSync(join(d, entry), join(bin, entry));
      }
    }
    const d = tempDir("qfault-noqemu");
    mkdirSync(join(d, "data"));
    dataDirs.push(join(d, "data"));
    const started = startPackaged(serverConfig(d, QEMU_CONFIG), { PATH: bin });
    await expect(started).rejects.toThrow(/exited \(1\) before ready/);
    const message = (await started.catch((e: Error) => e.message)) as string;
    expect(message).toContain("qemu-system-x86_64, not found on the server's PATH");
    expect(message).toContain("apt-get install qemu-system-x86 qemu-utils");
  });
});
