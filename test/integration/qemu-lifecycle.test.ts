/**
 * A shed on the QEMU backend, booted for real under software emulation (TCG:
 * this machine has no /dev/kvm) from the image `npm run build-vm-image` makes,
 * driven through the packaged CLI: create with install, PATH capture and
 * startup; `shed exec` and the real OpenSSH client; credentials copied in as
 * tar through the agent; stop runs the shutdown hook; start runs the startup
 * hook and keeps the workspace; delete leaves nothing.
 * Budget: about 6 minutes (two boots and a powerdown under TCG on two cores).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CliUser, cliOk, json, show, tempDir } from "../helpers/cli.js";
import { useCliServer } from "../helpers/cli-server.js";
import { makeGitRepo } from "../helpers/host.js";
import { runProcess } from "../helpers/host-tmux.js";
import { uniqueName } from "../helpers/names.js";
import { waitFor } from "../helpers/provision.js";
import type { TestServer } from "../helpers/server.js";
import { processesUnder } from "../helpers/vm.js";

const IMAGES = process.env.SHED_VM_IMAGES ?? "/var/lib/shed/vm-images";

const credDir = tempDir("qemu-cred");
writeFileSync(join(credDir, "token"), "token-from-host\n", { mode: 0o600 });

let server: TestServer;
let user: CliUser;
useCliServer(
  (s, u) => {
    server = s;
    user = u;
  },
  {
    enabled_backends: ["docker", "qemu"],
    vm_images_dir: IMAGES,
    vm_memory: "1GiB",
    start_timeout: "240s",
    stop_timeout: "30s",
    credentials: { tool: { source: credDir, target: "/home/shed/.config/tool" } },
  },
);

const name = uniqueName("qemu");

const REPO = {
  "hello.txt": "hello from the repo\n",
  ".shed/provision.yaml": [
    "hooks:",
    "  install: scripts/install.sh",
    "  startup: scripts/startup.sh",
    "  shutdown: scripts/shutdown.sh",
    "env:",
    "  GREETING: from-provision",
    "",
  ].join("\n"),
  "scripts/install.sh": [
    "#!/bin/bash",
    "set -eu",
    'mkdir -p "$HOME/.mytool/bin"',
    "printf '#!/bin/sh\\necho mytool-ran\\n' > \"$HOME/.mytool/bin/mytool\"",
    'chmod +x "$HOME/.mytool/bin/mytool"',
    'echo \'export PATH="$HOME/.mytool/bin:$PATH"\' >> "$HOME/.bashrc"',
    'echo "install on $(uname -r)"',
    "",
  ].join("\n"),
  "scripts/startup.sh": '#!/bin/bash\necho "startup $GREETING $(command -v mytool)" | tee -a /workspace/startup.log\n',
  "scripts/shutdown.sh": '#!/bin/bash\necho "shutdown of $SHED_NAME" | tee -a /workspace/shutdown.log\n',
};

/** QEMU, its network helper and their wrapper: every one names a file in an instance directory of this server. */
function vmProcesses(): string[] {
  return processesUnder([join(server.dir, "data", "vm")]);
}

afterAll(async () => {
  // Whatever a failed test left: the shed goes through Shed, so its QEMU and pasta go too.
  if (user && existsSync(join(server.dir, "data", "vm", name))) await user.run(["delete", name, "--force"]);
  for (const pid of vmProcesses()) process.kill(Number(pid), "SIGKILL");
});

describe("a shed on the qemu backend", () => {
  it("create: storage, VM start, credentials, clone, install, PATH capture and startup, with live progress", async () => {
    const repo = makeGitRepo(REPO);
    const res = await user.run(["create", name, "--backend", "qemu", "--repo", repo]);
    expect(res.code, show(res)).toBe(0);
    for (const title of ["Storage setup", "Container/VM start", "Credential setup", "Repo clone", "Install hook"]) {
      expect(res.stderr).toContain(title);
    }
    expect(res.stderr).toContain("install on ");
    expect(res.stderr).toContain("startup from-provision /home/shed/.mytool/bin/mytool");
    const shed = json(await cliOk(user, ["--json", "list"])).sheds.find((s: { name: string }) => s.name === name);
    expect(shed).toMatchObject({ backend: "qemu", status: "running" });
  }, 420_000);

  it("shed exec runs in the VM as shed, in /workspace, with the installed tool on PATH", async () => {
    const r = await cliOk(user, ["exec", name, "--", "bash", "-c", 'echo "$(whoami) $(pwd) $(mytool)"; cat hello.txt']);
    expect(r.stdout).toBe("shed /workspace mytool-ran\nhello from the repo\n");
    // A VM: its own kernel, not the host's.
    const kernel = await cliOk(user, ["exec", name, "--", "cat", "/proc/cmdline"]);
    expect(kernel.stdout).toContain("shed.agent=tcp");
    const failed = await user.run(["exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    expect([failed.code, failed.stdout, failed.stderr.includes("err")]).toEqual([7, "out\n", true]);
  });

  it("the credential is in the VM, owned by shed, with its mode", async () => {
    const r = await cliOk(user, [
      "exec",
      name,
      "--",
      "bash",
      "-c",
      "stat -c '%a %U' ~/.config/tool/token; cat ~/.config/tool/token",
    ]);
    expect(r.stdout).toBe("600 shed\ntoken-from-host\n");
  });

  it("a change to the credential on either side shows on the other while the VM runs", async () => {
    const token = join(credDir, "token");
    writeFileSync(token, "changed-on-host\n");
    await waitFor(
      "the host's change in the VM",
      async () =>
        (await user.run(["exec", name, "--", "cat", "/home/shed/.config/tool/token"])).stdout === "changed-on-host\n",
      60_000,
    );
    await cliOk(user, ["exec", name, "--", "sh", "-c", "echo changed-in-vm > ~/.config/tool/from-vm"]);
    await waitFor("the VM's new file on the host", async () => existsSync(join(credDir, "from-vm")), 60_000);
    expect(readFileSync(join(credDir, "from-vm"), "utf8")).toBe("changed-in-vm\n");
    expect(readFileSync(token, "utf8")).toBe("changed-on-host\n");
  }, 240_000);

  it("the real OpenSSH client reaches the VM through shed ssh-config", async () => {
    const home = tempDir("qemu-home");
    expect((await user.run(["ssh-config", name, "--install"], { env: { HOME: home } })).code).toBe(0);
    const ssh = await runProcess(
      [
        "ssh",
        "-F",
        join(home, ".ssh", "config"),
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=30",
        `shed-${name}`,
        "echo ok; whoami; pwd; mytool",
      ],
      { ...process.env, HOME: home },
    );
    expect(ssh.status, ssh.stderr).toBe(0);
    expect(ssh.stdout).toBe("ok\nshed\n/workspace\nmytool-ran\n");
  });

  it("stop runs the shutdown hook and powers the VM down; start runs startup and keeps the workspace", async () => {
    await cliOk(user, ["exec", name, "--", "sh", "-c", "echo kept > /workspace/state.txt"]);
    const stop = await user.run(["stop", name]);
    expect(stop.code, show(stop)).toBe(0);
    expect(stop.stderr).toContain(`shutdown of ${name}`);
    expect(stop.stderr).toContain("Agent drain");
    expect(stop.stderr).toContain("powered down");
    expect(vmProcesses()).toEqual([]);
    expect(
      json(await cliOk(user, ["--json", "list"])).sheds.find((s: { name: string }) => s.name === name).status,
    ).toBe("stopped");

    const start = await user.run(["start", name]);
    expect(start.code, show(start)).toBe(0);
    const r = await cliOk(user, ["exec", name, "--", "cat", "state.txt", "startup.log", "shutdown.log"]);
    expect(r.stdout).toBe(
      [
        "kept",
        "startup from-provision /home/shed/.mytool/bin/mytool",
        "startup from-provision /home/shed/.mytool/bin/mytool",
        `shutdown of ${name}`,
        "",
      ].join("\n"),
    );
  }, 420_000);

  it("delete stops it (shutdown hook included) and leaves no process and no instance directory", async () => {
    const del = await user.run(["delete", name, "--force"]);
    expect(del.code, show(del)).toBe(0);
    expect(del.stderr).toContain("Shutdown hook");
    expect(vmProcesses()).toEqual([]);
    expect(existsSync(join(server.dir, "data", "vm", name))).toBe(false);
    expect(json(await cliOk(user, ["--json", "list"])).sheds.some((s: { name: string }) => s.name === name)).toBe(
      false,
    );
  });
});
