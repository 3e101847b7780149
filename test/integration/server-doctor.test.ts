/**
 * `shed-server doctor` through the packaged server, on the real Docker engine and this host's real
 * QEMU, /dev/kvm (absent here) and ports: green on a good config, also beside a running server on
 * the same data_dir (its ports are its own); red, each with a hint, for a port someone else holds,
 * an insecure or unusable data_dir, a missing default image, and firecracker without KVM. QEMU
 * without KVM is only a warning: it runs under TCG.
 * Budget: 60 s (measured 19 s alone, 37 s beside other test runs): a dozen doctor runs and one packaged server.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, tempDir } from "../helpers/cli.js";
import { serverConfig, startPackaged, stopAllPackaged } from "../helpers/packaged-server.js";

const IMAGES = process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";

interface Check {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  hint?: string;
}

function doctor(config: string, json = true) {
  const r = spawnSync(
    process.execPath,
    [join(REPO_ROOT, "dist", "shed-server.mjs"), "doctor", "--config", config, ...(json ? ["--json"] : [])],
    { encoding: "utf8", timeout: 60_000 },
  );
  const out = `exit ${r.status}\n${r.stdout}${r.stderr}`;
  const report = json ? (JSON.parse(r.stdout) as { ok: boolean; checks: Check[] }) : undefined;
  const find = (name: string): Check => {
    const c = report?.checks.find((x) => x.check === name);
    if (!c) throw new Error(`no check ${name}:\n${out}`);
    return c;
  };
  return { code: r.status, stdout: r.stdout, out, report, find };
}

/** A free loopback port now (the OS's pick, released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const held: Server[] = [];
afterAll(async () => {
  for (const s of held) s.close();
  await stopAllPackaged();
});

describe("shed-server doctor, green", () => {
  it("passes a good config with docker and qemu enabled; no KVM is a warning for qemu", () => {
    const config = serverConfig(tempDir("doc-ok"), { enabled_backends: ["docker", "qemu"], vm_images_dir: IMAGES });
    const r = doctor(config);
    expect(r.code, r.out).toBe(0);
    expect(r.report?.ok).toBe(true);
    expect(r.find("docker engine").status).toBe("ok");
    expect(r.find("default_image").detail).toContain("shed-base:latest");
    expect(r.find("backend qemu").status).toBe("ok");
    expect(r.find("vm_image (qemu)").status).toBe("ok");
    expect(r.find("/dev/kvm").status).toBe(existsSync("/dev/kvm") ? "ok" : "warn");
    for (const c of r.report?.checks ?? []) expect(c.status, `${c.check}: ${c.detail}`).not.toBe("fail");
  });

  it("prints one line per check with a summary, and a hint under a warning", () => {
    const config = serverConfig(tempDir("doc-text"), { enabled_backends: ["docker", "qemu"], vm_images_dir: IMAGES });
    const r = doctor(config, false);
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toMatch(/^ok {3}docker engine: Docker .* \(API \d+\.\d+\)/m);
    expect(r.stdout).toMatch(/^all \d+ checks passed/m);
    if (!existsSync("/dev/kvm")) expect(r.stdout).toMatch(/^warn \/dev\/kvm: .*TCG.*\n {5}hint: /m);
  });

  it("beside a running server on the same data_dir, its ports count as its own", async () => {
    const dir = tempDir("doc-running");
    const [http, ssh] = [await freePort(), await freePort()];
    const config = serverConfig(dir, { http_port: http, ssh_port: ssh });
    const server = await startPackaged(config);
    const r = doctor(config);
    expect(r.code, r.out).toBe(0);
    expect(r.find("port http_port").detail).toContain(`held by this server (pid ${server.proc.pid}`);
    expect(r.find("port ssh_port").detail).toContain(`held by this server (pid ${server.proc.pid}`);
    // The same ports seen from another data_dir are someone else's.
    const other = doctor(serverConfig(tempDir("doc-other"), { http_port: http, ssh_port: ssh }));
    expect(other.code, other.out).toBe(1);
    expect(other.find("port http_port")).toMatchObject({ status: "fail" });
    expect(other.find("port http_port").detail).toContain(`pid ${server.proc.pid}`);
    await server.stop();
  });
});

describe("shed-server doctor, red with a hint", () => {
  it("a port another program holds, naming that process", async () => {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    held.push(s);
    const port = (s.address() as { port: number }).port;
    const r = doctor(serverConfig(tempDir("doc-port"), { http_port: port }));
    expect(r.code, r.out).toBe(1);
    expect(r.report?.ok).toBe(false);
    const c = r.find("port http_port");
    expect(c.status).toBe("fail");
    expect(c.detail).toContain(`127.0.0.1:${port} is in use by pid ${process.pid}`);
    expect(c.hint).toContain("set http_port to a free port in");
  });

  it("a data_dir every user can write", () => {
    const dir = tempDir("doc-insecure");
    mkdirSync(join(dir, "data"));
    chmodSync(join(dir, "data"), 0o777);
    const r = doctor(serverConfig(dir));
    expect(r.code, r.out).toBe(1);
    expect(r.find("data_dir")).toMatchObject({ status: "fail", hint: expect.stringContaining("chmod 700") });
    expect(r.find("data_dir").detail).toContain("writable by every user (mode 777)");
  });

  it("a data_dir that cannot be made (a file stands in its path)", () => {
    const dir = tempDir("doc-unwritable");
    writeFileSync(join(dir, "file"), "");
    const config = serverConfig(dir, { data_dir: join(dir, "file", "data") });
    const r = doctor(config);
    expect(r.code, r.out).toBe(1);
    expect(r.find("data_dir")).toMatchObject({ status: "fail", hint: expect.stringContaining("data_dir") });
    expect(r.find("data_dir").detail).toContain("cannot be made");
  });

  it("a default image the engine does not have", () => {
    const r = doctor(serverConfig(tempDir("doc-image"), { default_image: "shed-doctor-test-missing:none" }));
    expect(r.code, r.out).toBe(1);
    const c = r.find("default_image");
    expect(c).toMatchObject({ status: "fail", detail: "shed-doctor-test-missing:none is not in the Docker engine" });
    expect(c.hint).toContain("docker pull shed-doctor-test-missing:none");
  });

  it("firecracker enabled on a host without KVM", () => {
    if (existsSync("/dev/kvm")) throw new Error("this test expects a host without /dev/kvm, as these machines are");
    const config = serverConfig(tempDir("doc-fc"), {
      enabled_backends: ["docker", "firecracker"],
      vm_images_dir: IMAGES,
    });
    const r = doctor(config);
    expect(r.code, r.out).toBe(1);
    expect(r.find("/dev/kvm")).toMatchObject({ status: "fail", hint: expect.stringContaining("modprobe") });
    const fc = r.find("backend firecracker");
    expect(fc.status).toBe("fail");
    expect(fc.detail).toContain("/dev/kvm does not exist");
    expect(fc.hint).toBeTruthy();
  });
});
