/**
 * Firecracker and VZ without their hypervisors (none can run here: no /dev/kvm, no macOS), through
 * the packaged server and CLI:
 * - `shed-server vm-plan` prints the exact argv and, for Firecracker, the ordered API requests a
 *   boot would use; every request is checked against Firecracker's own OpenAPI description
 *   (test/fixtures/firecracker-api.yaml) and vfkit's argv is read back with its documented syntax.
 *   Nothing is started and nothing is made.
 * - `shed create --backend firecracker|vz` fails within seconds naming what this host lacks, and a
 *   server whose config enables firecracker exits at start saying the same; nothing is made.
 * Budget: 30 s (measured about 8 s): a dozen runs of the packaged server, no VM.
 */

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeInstanceMeta } from "../../src/backends/vm/instance-meta.js";
import { type CliUser, newCliUser, REPO_ROOT, show, tempDir } from "../helpers/cli.js";
import { assertFirecrackerRequest, loadFirecrackerSpec } from "../helpers/firecracker-spec.js";
import { uniqueName } from "../helpers/names.js";
import { type PackagedServer, serverConfig, startPackaged, stopAllPackaged } from "../helpers/packaged-server.js";
import { parseVfkit } from "../helpers/vfkit-syntax.js";

const IMAGES = process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";
const dir = tempDir("vmplan");
const dataDir = join(dir, "data");
const credDir = tempDir("vmplan-cred");
mkdirSync(join(credDir, "gh"), { recursive: true });
writeFileSync(join(credDir, "gh", "hosts.yml"), "token: not-a-secret-here\n");
writeFileSync(join(credDir, "netrc"), "machine example.com\n", { mode: 0o600 });
const config = serverConfig(dir, {
  vm_images_dir: IMAGES,
  credentials: {
    gh: { source: join(credDir, "gh"), target: "/home/shed/.config/gh" },
    netrc: { source: join(credDir, "netrc"), target: "/home/shed/.netrc", readonly: true },
  },
});

function vmPlan(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    [join(REPO_ROOT, "dist", "shed-server.mjs"), "vm-plan", "--config", config, ...args],
    {
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

describe("shed-server vm-plan --backend firecracker", () => {
  it("prints the argv and every API request in boot order, each one Firecracker's API description accepts", () => {
    const r = vmPlan("--backend", "firecracker", "plan-fc", "--cpus", "3", "--memory", "1536");
    expect(r.code, r.stderr).toBe(0);
    const plan = r.json();
    const inst = join(dataDir, "vm", "plan-fc");
    expect(plan.instance_dir).toBe(inst);
    expect(plan.argv).toEqual(["firecracker", "--api-sock", join(inst, "firecracker.sock"), "--id", "shed-plan-fc"]);
    expect(plan.requests.map((q: { method: string; path: string }) => `${q.method} ${q.path}`)).toEqual([
      "PUT /machine-config",
      "PUT /boot-source",
      "PUT /drives/rootfs",
      "PUT /drives/config",
      "PUT /network-interfaces/eth0",
      "PUT /vsock",
      "PUT /actions",
    ]);
    const spec = loadFirecrackerSpec();
    for (const q of plan.requests) assertFirecrackerRequest(q, spec);
    const body = (path: string) => plan.requests.find((q: { path: string }) => q.path === path).body;
    expect(body("/machine-config")).toMatchObject({ vcpu_count: 3, mem_size_mib: 1536 });
    // The image built on this machine: Firecracker boots its uncompressed kernel.
    const kernel = body("/boot-source").kernel_image_path as string;
    expect(kernel.endsWith("/vmlinux")).toBe(true);
    expect(existsSync(kernel)).toBe(true);
    const args = (body("/boot-source").boot_args as string).split(" ");
    expect(args).toEqual(expect.arrayContaining(["reboot=k", "shed.agent=vsock", "shed.cfgdev=vdb", "console=ttyS0"]));
    expect(args.find((a) => a.startsWith("ip="))).toMatch(
      /^ip=172\.30\.0\.2::172\.30\.0\.1:255\.255\.255\.0::eth0:off:/,
    );
    expect(body("/drives/rootfs")).toMatchObject({ path_on_host: join(inst, "rootfs.img"), is_root_device: true });
    expect(body("/drives/config")).toMatchObject({ path_on_host: join(inst, "config.img"), is_read_only: true });
    expect(body("/network-interfaces/eth0")).toMatchObject({ host_dev_name: "shedtap0" });
    expect(body("/vsock")).toEqual({ guest_cid: 3, uds_path: join(inst, "vsock.sock") });
    expect(body("/actions")).toEqual({ action_type: "InstanceStart" });
    // Nothing was made or started.
    expect(existsSync(inst)).toBe(false);
  });

  it("plans the next TAP, IP and CID that no instance of the data_dir holds", () => {
    const held = join(dataDir, "vm", "held");
    mkdirSync(held, { recursive: true, mode: 0o700 });
    writeInstanceMeta(held, {
      version: 1,
      name: "held",
      backend: "firecracker",
      image: join(IMAGES, "shed-vm-x86_64"),
      arch: "x86_64",
      created_at: new Date().toISOString(),
      network: { tap: "shedtap0", ip: "172.30.0.2", mac: "06:00:ac:1e:00:02", cid: 3 },
      server_id: "other",
      agent_transport: "vsock",
      ports: {},
      hypervisor: null,
      helpers: {},
      memory_mib: 1024,
      cpus: 2,
    });
    const plan = vmPlan("--backend", "firecracker", "plan-fc2").json();
    const body = (path: string) => plan.requests.find((q: { path: string }) => q.path === path).body;
    expect(body("/network-interfaces/eth0").host_dev_name).toBe("shedtap1");
    expect(body("/vsock").guest_cid).toBe(4);
    expect(body("/boot-source").boot_args).toContain("ip=172.30.0.3::172.30.0.1:");
  });

  it("refuses what Firecracker cannot do, naming the flag and the limit", () => {
    const local = vmPlan("--backend", "firecracker", "plan-fc3", "--local-dir", dir);
    expect(local.code).toBe(1);
    expect(local.stderr).toContain("the firecracker backend does not support --local-dir");
    const cpus = vmPlan("--backend", "firecracker", "plan-fc3", "--cpus", "33");
    expect(cpus.stderr).toContain("--cpus 33: firecracker takes at most 32");
    const backend = vmPlan("--backend", "kvm", "plan-fc3");
    expect(backend.stderr).toContain('--backend "kvm": vm-plan knows firecracker and vz');
  });
});

describe("shed-server vm-plan --backend vz", () => {
  it("prints vfkit's argv, read back with vfkit's documented syntax: disks, NAT, vsock sockets, virtio-fs shares", () => {
    const local = tempDir("vmplan-local");
    const r = vmPlan("--backend", "vz", "plan-vz", "--local-dir", local, "--cpus", "4", "--memory", "2GiB");
    expect(r.code, r.stderr).toBe(0);
    const plan = r.json();
    const inst = join(dataDir, "vm", "plan-vz");
    expect(plan.requests).toBeUndefined();
    const argv = parseVfkit(plan.argv);
    expect(argv.binary).toBe("vfkit");
    expect(argv.one("--cpus")).toBe("4");
    expect(argv.one("--memory")).toBe("2048");
    const boot = argv.bootloader();
    expect(boot.type).toBe("linux");
    expect(String(boot.opts.get("kernel")).endsWith("/shed-vm-arm64/Image")).toBe(true);
    const cmdline = String(boot.opts.get("cmdline")).split(" ");
    expect(cmdline).toEqual(expect.arrayContaining(["root=/dev/vda", "console=hvc0", "shed.agent=vsock"]));
    const devices = argv.devices.map((d) => ({ type: d.type, ...Object.fromEntries(d.opts) }));
    // The root disk first (the guest's vda), then the config disk the boot script finds by its serial.
    expect(devices.filter((d) => d.type === "virtio-blk")).toEqual([
      { type: "virtio-blk", path: join(inst, "rootfs.img") },
      { type: "virtio-blk", path: join(inst, "config.img"), deviceId: "shedcfg" },
    ]);
    expect(devices).toContainEqual(expect.objectContaining({ type: "virtio-net", nat: true }));
    expect(devices.filter((d) => d.type === "virtio-vsock")).toEqual([
      { type: "virtio-vsock", port: "1024", socketURL: join(inst, "vsock-1024.sock"), connect: true },
      { type: "virtio-vsock", port: "1026", socketURL: join(inst, "vsock-1026.sock"), connect: true },
    ]);
    // The local dir at /workspace, the directory credential shared; the file credential goes as tar.
    expect(devices.filter((d) => d.type === "virtio-fs")).toEqual([
      { type: "virtio-fs", sharedDir: local, mountTag: "workspace" },
      { type: "virtio-fs", sharedDir: join(credDir, "gh"), mountTag: "cred0" },
    ]);
    expect(JSON.stringify(plan)).not.toContain("netrc");
    expect(devices).toContainEqual({ type: "virtio-serial", logFilePath: join(inst, "serial.log") });
    expect(existsSync(inst)).toBe(false);
  });

  it("refuses a path vfkit's syntax cannot carry, naming the path and the character", () => {
    const comma = join(tempDir("vmplan"), "a,b");
    mkdirSync(comma);
    const r = vmPlan("--backend", "vz", "plan-vz2", "--local-dir", comma);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--local-dir "${comma}": it contains ','`);
    const mem = vmPlan("--backend", "vz", "plan-vz2", "--memory", "64");
    expect(mem.stderr).toContain("--memory 64 MiB: vz takes 128 MiB to 262144 MiB");
  });
});

describe("firecracker and vz fail fast on a host that cannot run them", () => {
  let server: PackagedServer;
  let user: CliUser;

  beforeAll(async () => {
    server = await startPackaged(config);
    user = newCliUser();
    const add = await user.run(
      ["server", "add", "127.0.0.1", "--port", String(server.httpPort), "--name", "vmplan", "--token-file", "-"],
      { input: `${server.token}\n` },
    );
    expect(add.code, show(add)).toBe(0);
  });
  afterAll(async () => {
    await stopAllPackaged();
  });

  it("create --backend firecracker names /dev/kvm and where to get firecracker; nothing is made", async () => {
    const name = uniqueName("vp-fc");
    const res = await user.run(["--server", "vmplan", "create", name, "--backend", "firecracker"]);
    expect(res.code, show(res)).not.toBe(0);
    expect(res.stderr).toContain('backend "firecracker" is not enabled on this server, and this host could not run it');
    expect(res.stderr).toContain("/dev/kvm");
    expect(res.stderr).toContain("firecracker");
    expect(res.stderr).toMatch(/github\.com\/firecracker-microvm\/firecracker\/releases|firecracker_binary/);
    expect(existsSync(join(dataDir, "vm", name))).toBe(false);
    expect(existsSync(join(dataDir, "sheds", `${name}.json`))).toBe(false);
  });

  it("create --backend vz names macOS on Apple silicon; nothing is made", async () => {
    const name = uniqueName("vp-vz");
    const res = await user.run(["--server", "vmplan", "create", name, "--backend", "vz"]);
    expect(res.code, show(res)).not.toBe(0);
    expect(res.stderr).toContain("the vz backend needs macOS on Apple silicon; this is linux/");
    expect(existsSync(join(dataDir, "vm", name))).toBe(false);
  });

  it("a server whose config enables firecracker exits at start naming /dev/kvm", async () => {
    const d = tempDir("vmplan-fc");
    const started = startPackaged(serverConfig(d, { enabled_backends: ["docker", "firecracker"] }));
    await expect(started).rejects.toThrow(/exited \(1\) before ready/);
    const message = (await started.catch((e: Error) => e.message)) as string;
    expect(message).toContain("/dev/kvm");
  });
});
