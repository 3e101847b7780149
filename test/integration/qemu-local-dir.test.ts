/**
 * --local-dir on the QEMU backend, booted for real under software emulation (TCG), through the
 * packaged CLI: the directory (owned by uid 1234, inside local_dir_roots) is shared by virtiofsd
 * and mounted at /workspace; the install hook runs there and what it writes belongs to 1234 on the
 * host; edits show on the other side at once; stop and start mount it again (the startup hook
 * sees it), and refuse another directory put at its path; delete leaves the directory byte for
 * byte and no virtiofsd; a refused path makes nothing.
 * Budget: about 1 minute (52 to 54 s measured on an idle 2-core machine: two boots and a
 * powerdown under TCG).
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { uniqueName } from "../helpers/names.js";
import type { TestServer } from "../helpers/server.js";
import { processesUnder } from "../helpers/vm.js";

const IMAGES = process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";

const roots = tempDir("qemu-roots");
const project = join(roots, "proj");
mkdirSync(join(project, ".shed"), { recursive: true });
writeFileSync(join(project, ".shed", "provision.yaml"), "hooks:\n  install: install.sh\n  startup: startup.sh\n");
writeFileSync(join(project, "install.sh"), '#!/bin/bash\nset -eu\necho "$(pwd) $(id -u)" > from-install\n', {
  mode: 0o755,
});
writeFileSync(join(project, "startup.sh"), "#!/bin/bash\nset -eu\necho started >> /workspace/startup.log\n", {
  mode: 0o755,
});
spawnSync("chown", ["-R", "1234:1234", project]);

let server: TestServer;
let user: CliUser;
useCliServer(
  (s, u) => {
    server = s;
    user = u;
  },
  {
    enabled_backends: ["docker", "qemu"],
    default_backend: "qemu",
    vm_images_dir: IMAGES,
    vm_memory: "1GiB",
    start_timeout: "240s",
    stop_timeout: "30s",
    local_dir_roots: [roots],
  },
);

const name = uniqueName("qemu-ld");

/** QEMU, pasta, virtiofsd and their wrapper: every one names a file in an instance directory of this server. */
function vmProcesses(): string[] {
  return processesUnder([join(server.dir, "data", "vm")]);
}

function virtiofsds(): string[] {
  return vmProcesses().filter((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("virtiofsd"));
}

/** Every file under `dir` with its owner, mode and content: what "byte for byte" compares. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p);
      const head = `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
      if (e.isDirectory()) {
        out[`${relative(dir, p)}/`] = head;
        walk(p);
      } else out[relative(dir, p)] = `${head} ${readFileSync(p, "base64")}`;
    }
  };
  walk(dir);
  return out;
}

function ownerOf(path: string): string {
  const st = statSync(path);
  return `${st.uid}:${st.gid}`;
}

async function inVm(script: string): Promise<string> {
  return (await cliOk(user, ["exec", name, "--", "bash", "-c", script])).stdout;
}

afterAll(async () => {
  if (user && existsSync(join(server.dir, "data", "vm", name))) await user.run(["delete", name, "--force"]);
  for (const pid of vmProcesses()) process.kill(Number(pid), "SIGKILL");
});

describe("--local-dir on the qemu backend (virtiofs)", () => {
  it("create shares the directory at /workspace: the install hook ran there, as the directory's owner", async () => {
    const res = await user.run(["create", name, "--local-dir", project, "--no-sync"]);
    expect(res.code, show(res)).toBe(0);
    expect(res.stderr).toContain(`virtiofs share of ${project}`);
    expect(res.stderr).toContain("user shed now has the owner's uid 1234 and gid 1234");
    const shed = json(await cliOk(user, ["--json", "list"])).sheds.find((s: { name: string }) => s.name === name);
    expect(shed).toMatchObject({ backend: "qemu", status: "running", local_dir: project });
    expect(readFileSync(join(project, "from-install"), "utf8")).toBe("/workspace 1234\n");
    expect(ownerOf(join(project, "from-install"))).toBe("1234:1234");
    expect(readFileSync(join(project, "startup.log"), "utf8")).toBe("started\n");
    expect(await inVm("awk '$2 == \"/workspace\" { print $3, $1 }' /proc/mounts; stat -c %i /workspace")).toBe(
      `virtiofs workspace\n${statSync(project).ino}\n`,
    );
    expect(virtiofsds()).not.toEqual([]);
  }, 300_000);

  it("a host-side edit shows in the VM at once, and a VM-side write on the host", async () => {
    // Read once in the VM first, so a cached copy would be what it shows next.
    expect(await inVm("cat /workspace/from-install")).toBe("/workspace 1234\n");
    writeFileSync(join(project, "from-install"), "edited on the host\n");
    writeFileSync(join(project, "new-on-host"), "new\n");
    expect(await inVm("cat /workspace/from-install /workspace/new-on-host")).toBe("edited on the host\nnew\n");
    await inVm("echo from-vm > /workspace/from-vm; mkdir /workspace/sub; touch /workspace/sub/f");
    expect(readFileSync(join(project, "from-vm"), "utf8")).toBe("from-vm\n");
    expect([ownerOf(join(project, "from-vm")), ownerOf(join(project, "sub", "f"))]).toEqual(["1234:1234", "1234:1234"]);
  });

  it("stop and start: mounted again, and the startup hook ran in it", async () => {
    const stop = await user.run(["stop", name]);
    expect(stop.code, show(stop)).toBe(0);
    expect(vmProcesses()).toEqual([]);
    writeFileSync(join(project, "while-stopped"), "x\n");
    // Another directory at the path was never checked: start refuses it, before any process starts.
    renameSync(project, `${project}.moved`);
    mkdirSync(project);
    const refused = await user.run(["--json", "start", name]);
    expect(refused.code, show(refused)).toBe(1);
    expect(json(refused).error).toMatchObject({ code: "LOCAL_DIR_REFUSED" });
    expect(json(refused).error.message).toContain(`${project} is no longer the directory this shed was created with`);
    expect(vmProcesses()).toEqual([]);
    rmdirSync(project);
    renameSync(`${project}.moved`, project);
    const start = await user.run(["start", name]);
    expect(start.code, show(start)).toBe(0);
    expect(start.stderr).toContain(`virtiofs share of ${project} mounted again`);
    expect(readFileSync(join(project, "startup.log"), "utf8")).toBe("started\nstarted\n");
    expect(await inVm("cat /workspace/while-stopped; id -u; touch /workspace/after-start")).toBe("x\n1234\n");
    expect(ownerOf(join(project, "after-start"))).toBe("1234:1234");
  }, 300_000);

  it("delete leaves the directory byte for byte and no virtiofsd", async () => {
    const before = snapshot(project);
    expect(Object.keys(before)).toContain("from-vm");
    const del = await user.run(["delete", name, "--force"]);
    expect(del.code, show(del)).toBe(0);
    expect(del.stderr).toContain(`${project} left as it was`);
    expect(vmProcesses()).toEqual([]);
    expect(existsSync(join(server.dir, "data", "vm", name))).toBe(false);
    expect(snapshot(project)).toEqual(before);
  }, 120_000);

  it("a refused directory (/etc) is refused before anything is made", async () => {
    const refused = uniqueName("qemu-etc");
    const res = await user.run(["--json", "create", refused, "--local-dir", "/etc", "--no-sync"]);
    expect(res.code, show(res)).toBe(1);
    expect(json(res).error.code).toBe("LOCAL_DIR_REFUSED");
    expect(existsSync(join(server.dir, "data", "vm", refused))).toBe(false);
    expect(vmProcesses()).toEqual([]);
  });
});
