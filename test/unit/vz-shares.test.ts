import { execFileSync } from "node:child_process";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  MOUNT_POINT_SCRIPT,
  mountShares,
  planShares,
  unescapeMountField,
  type VzShare,
} from "../../src/backends/vz/vz-shares.js";
import { ShedError } from "../../src/core/errors.js";
import type { ExecProcess, ExecSpec, GuestExec } from "../../src/guest/exec.js";
import { tempDir } from "../helpers/cli.js";

/**
 * mountShares cannot run for real here: virtio-fs shares exist only inside a VZ guest, and there is
 * no Mac. So its commands are checked against RecordingGuest, a stand-in for the agent's GuestExec
 * that records each argv and plays a guest's mount table (it is not the real agent or a real guest).
 * The mount-point script, plain sh, is run for real below.
 */
class RecordingGuest implements GuestExec {
  readonly calls: ExecSpec[] = [];
  /** Lines of the guest's /proc/self/mounts. */
  mounts: string[] = ["/dev/vda / ext4 rw,relatime 0 0", "proc /proc proc rw 0 0"];
  /** Tags whose mount fails, with the stderr the guest's mount would print. */
  failing = new Map<string, string>();

  async exec(spec: ExecSpec): Promise<ExecProcess> {
    this.calls.push(spec);
    let out = "";
    let err = "";
    let code = 0;
    if (spec.argv[0] === "cat" && spec.argv[1] === "/proc/self/mounts") out = `${this.mounts.join("\n")}\n`;
    if (spec.argv[0] === "mount") {
      const [tag, target] = spec.argv.slice(-2) as [string, string];
      const fail = this.failing.get(tag);
      if (fail !== undefined) {
        err = fail;
        code = 32;
      } else this.mounts.push(`${tag} ${target.replaceAll(" ", "\\040")} virtiofs rw,relatime 0 0`);
    }
    const stdout = Readable.from([Buffer.from(out)]);
    const stderr = Readable.from([Buffer.from(err)]);
    // As GuestExec promises: the exit code once the output was read.
    const ended = (r: Readable) => new Promise<void>((resolve) => r.once("end", () => resolve()));
    return {
      stdin: null,
      stdout,
      stderr,
      exited: Promise.all([ended(stdout), ended(stderr)]).then(() => code),
      resize: async () => {},
      signal: async () => {},
    };
  }

  argvs(): string[][] {
    return this.calls.map((c) => (c.argv[0] === "sh" ? ["sh", ...c.argv.slice(4)] : c.argv));
  }
}

const cred = (source: string, target: string, more: { readonly?: boolean; exclude?: string[] } = {}) => ({
  name: target,
  source,
  target,
  readonly: more.readonly ?? false,
  exclude: more.exclude ?? [],
});

describe("planShares", () => {
  const dirs = new Set(["/home/dev/src/app", "/srv/creds/gh", "/srv/creds/ssh", "/srv/creds/aws"]);
  const isDirectory = (p: string) => dirs.has(p);

  it("shares --local-dir as workspace and each directory credential as cred<N>; files go as tar", () => {
    const gh = cred("/srv/creds/gh", "/home/shed/.config/gh", { readonly: true });
    const token = cred("/srv/creds/npmrc", "/home/shed/.npmrc");
    const ssh = cred("/srv/creds/ssh", "/home/shed/.ssh", { exclude: ["id_*"] });
    const aws = cred("/srv/creds/aws", "/home/shed/.aws");
    const gone = cred("/srv/creds/missing", "/home/shed/.missing");
    const plan = planShares({ localDir: "/home/dev/src/app", credentials: [gh, token, ssh, aws, gone], isDirectory });
    expect(plan.shares).toEqual<VzShare[]>([
      { tag: "workspace", source: "/home/dev/src/app", target: "/workspace", readonly: false },
      { tag: "cred0", source: "/srv/creds/gh", target: "/home/shed/.config/gh", readonly: true },
      { tag: "cred1", source: "/srv/creds/aws", target: "/home/shed/.aws", readonly: false },
    ]);
    // The same objects come back: the caller copies them with its own CredentialConfig.
    expect(plan.fileCredentials).toEqual([token, ssh, gone]);
    expect(plan.fileCredentials[0]).toBe(token);
  });

  it("numbers credentials from cred0 without a local dir, and shares nothing when there is nothing", () => {
    expect(planShares({ credentials: [cred("/srv/creds/gh", "/t")], isDirectory }).shares).toEqual([
      { tag: "cred0", source: "/srv/creds/gh", target: "/t", readonly: false },
    ]);
    expect(planShares({ credentials: [], isDirectory })).toEqual({ shares: [], fileCredentials: [] });
  });

  it("refuses a --local-dir or credential directory vfkit cannot carry, before anything is made", () => {
    expect(() => planShares({ localDir: "/home/dev/a,b", credentials: [], isDirectory: () => true })).toThrow(
      /--local-dir "\/home\/dev\/a,b": it contains ','/,
    );
    expect(() => planShares({ credentials: [cred("/srv/cr,eds", "/home/shed/.x")], isDirectory: () => true })).toThrow(
      /credential source for \/home\/shed\/.x "\/srv\/cr,eds"/,
    );
  });
});

describe("mountShares (against RecordingGuest)", () => {
  const shares: VzShare[] = [
    { tag: "workspace", source: "/home/dev/src/app", target: "/workspace", readonly: false },
    { tag: "cred0", source: "/srv/creds/gh", target: "/home/shed/my creds", readonly: true },
  ];

  it("makes each mount point and mounts it as root, read-only where asked", async () => {
    const guest = new RecordingGuest();
    await mountShares(guest, shares);
    expect(guest.argvs()).toEqual([
      ["cat", "/proc/self/mounts"],
      ["sh", "/workspace", "shed"],
      ["mount", "-t", "virtiofs", "workspace", "/workspace"],
      ["sh", "/home/shed/my creds", "shed"],
      ["mount", "-t", "virtiofs", "-o", "ro", "cred0", "/home/shed/my creds"],
    ]);
    expect(guest.calls.every((c) => c.user === "root")).toBe(true);
    expect(guest.calls[1]?.argv.slice(0, 3)).toEqual(["sh", "-c", MOUNT_POINT_SCRIPT]);
  });

  it("leaves a share already mounted with its tag at its target alone (the mount table's \\040 read as a space)", async () => {
    const guest = new RecordingGuest();
    await mountShares(guest, shares);
    guest.calls.length = 0;
    await mountShares(guest, shares);
    expect(guest.argvs()).toEqual([["cat", "/proc/self/mounts"]]);
  });

  it("tries every share and names each failure with its tag, target and the guest's stderr", async () => {
    const guest = new RecordingGuest();
    guest.failing.set("cred0", "mount: /home/shed/my creds: wrong fs type, bad option, bad superblock on cred0.\n");
    const err = await mountShares(guest, [...shares].reverse()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShedError);
    const e = err as ShedError;
    expect(e.code).toBe("BACKEND_ERROR");
    expect(e.message).toBe(
      "could not mount the virtio-fs share cred0 at /home/shed/my creds in the VM: mount: /home/shed/my creds: wrong fs type, bad option, bad superblock on cred0.",
    );
    expect(e.details).toEqual({ failed: [{ tag: "cred0", target: "/home/shed/my creds" }] });
    expect(e.hint).toContain("virtiofs");
    // The workspace was still mounted after the credential failed.
    expect(guest.argvs()).toContainEqual(["mount", "-t", "virtiofs", "workspace", "/workspace"]);
  });

  it("does nothing at all without shares", async () => {
    const guest = new RecordingGuest();
    await mountShares(guest, []);
    expect(guest.calls).toEqual([]);
  });
});

describe("the mount-point script (run for real with sh)", () => {
  it("makes missing parents and the point owned by the user, and leaves an existing one alone", () => {
    const root = tempDir("vz-shares");
    const existing = join(root, "home");
    mkdirSync(existing, { mode: 0o700 });
    const target = join(existing, "a b", "c");
    execFileSync("sh", ["-c", MOUNT_POINT_SCRIPT, "shed-mount-point", target, "daemon"]);
    const daemon = Number(execFileSync("id", ["-u", "daemon"]).toString());
    expect(statSync(target).isDirectory()).toBe(true);
    expect(statSync(target).uid).toBe(daemon);
    expect(statSync(join(existing, "a b")).uid).toBe(daemon);
    // Not made here, so not handed over.
    expect(statSync(existing).uid).toBe(process.getuid?.());
    execFileSync("sh", ["-c", MOUNT_POINT_SCRIPT, "shed-mount-point", target, "daemon"]);
  });

  it("reads the mount table's octal escapes", () => {
    expect(unescapeMountField("/home/shed/my\\040creds\\011x\\134y")).toBe("/home/shed/my creds\tx\\y");
  });
});
