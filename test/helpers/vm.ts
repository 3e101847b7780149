import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AgentClient, tcpDialer } from "../../src/agent/client/index.js";
import { QemuMachine } from "../../src/backends/qemu/qemu-machine.js";
import { listInstanceNames } from "../../src/backends/vm/instance-dir.js";
import { resolveVmImage, type VmImage } from "../../src/backends/vm/vm-image.js";

/**
 * Helpers for tests that boot real VMs from the built image (npm run build-vm-image; SHED_VM_IMAGES
 * says where, as for the server). The data_dir lives directly under /tmp: the instance's sockets
 * must fit in a Unix socket path.
 */
export function testImage(): VmImage {
  return resolveVmImage();
}

export function vmDataDir(): string {
  return mkdtempSync(join("/tmp", "shed-qm-"));
}

/** Kills every QEMU (and passt) recorded under dataDir and removes the directory. */
export async function removeVmDataDir(dataDir: string): Promise<void> {
  for (const name of listInstanceNames(dataDir)) {
    try {
      await QemuMachine.open(dataDir, name)?.remove();
    } catch (err) {
      console.error(`cleanup of VM ${name}: ${(err as Error).message}`);
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
}

export async function agentFor(m: QemuMachine): Promise<AgentClient> {
  const ep = m.agentEndpoint();
  return AgentClient.connect({
    dial: tcpDialer(ep.host, ep.execPort),
    secret: ep.secret,
    where: `the agent of ${m.name}`,
  });
}

/** Runs argv in the guest (as root unless told) and collects its output. */
export async function guestRun(
  agent: AgentClient,
  argv: string[],
  user = "root",
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const x = await agent.exec({ argv, user });
  let stdout = "";
  let stderr = "";
  x.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  x.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const r = await x.exited;
  return { exitCode: r.exitCode, stdout, stderr };
}

/**
 * The live processes (zombies left out) whose command line names a path under one of `roots`:
 * a VM's QEMU, its network helper and virtiofsd each name a file of their instance directory.
 */
export function processesUnder(roots: readonly string[]): string[] {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // A zombie (its parent died, nobody reaped it yet) has exited.
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (roots.some((r) => cmd.includes(r))) out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
