import { ShedError } from "../../core/errors.js";
import { GUEST_USER, WORKSPACE } from "../../core/types.js";
import { type GuestExec, runCollect } from "../../guest/exec.js";
import { checkVfkitPath } from "./vfkit-argv.js";

/**
 * The VZ backend's virtio-fs shares (the seed's VZ column): --local-dir at /workspace, and each
 * directory credential at its target; single-file credentials go in as tar through the agent like
 * on Firecracker. vfkit gets one `--device virtio-fs,sharedDir=,mountTag=` per share
 * (vfkit-argv.ts); the guest mounts them through the agent, again on every start, because a mount
 * does not outlive the VM.
 *
 * Not run for real anywhere yet: there is no Mac here. Two things only a Mac can show: vfkit's
 * virtio-fs option has no read-only setting, so a read-only credential is read-only through the
 * guest's mount only (guest root could remount it); and which owner VZ presents the host's files
 * with in the guest.
 */

export interface VzShare {
  tag: string;
  source: string;
  target: string;
  readonly: boolean;
}

/** What planShares needs of a credential (CredentialConfig in src/config/server-config.ts has it all). */
export interface ShareableCredential {
  source: string;
  target: string;
  readonly?: boolean;
  exclude?: readonly string[];
}

/** The tag of the --local-dir share, mounted at /workspace. */
export const WORKSPACE_SHARE_TAG = "workspace";

export interface SharePlan<C> {
  /** The workspace first (a failed workspace mount is fatal), then directory credentials. */
  shares: VzShare[];
  /**
   * Credentials that go in as tar: single files, and directories with `exclude` patterns (a share
   * would show the guest the very files the patterns keep on the host).
   */
  fileCredentials: C[];
}

/**
 * Splits a shed's --local-dir and credentials into virtio-fs shares and tar copies. Every share's
 * source is checked against vfkit's syntax here, so a path it cannot carry is refused before
 * anything is made. A missing source is not a directory: it goes to the tar list, whose copy says
 * it is missing the way it does on the other backends.
 */
export function planShares<C extends ShareableCredential>(o: {
  localDir?: string;
  credentials: readonly C[];
  isDirectory: (p: string) => boolean;
}): SharePlan<C> {
  const shares: VzShare[] = [];
  if (o.localDir !== undefined) {
    checkVfkitPath(o.localDir, "--local-dir");
    shares.push({ tag: WORKSPACE_SHARE_TAG, source: o.localDir, target: WORKSPACE, readonly: false });
  }
  const fileCredentials: C[] = [];
  let n = 0;
  for (const c of o.credentials) {
    if ((c.exclude?.length ?? 0) > 0 || !o.isDirectory(c.source)) {
      fileCredentials.push(c);
      continue;
    }
    checkVfkitPath(c.source, `the credential source for ${c.target}`);
    shares.push({
      tag: `cred${n++}`,
      source: c.source,
      target: c.target,
      readonly: c.readonly ?? false,
    });
  }
  return { shares, fileCredentials };
}

/** Makes a mount point's missing parents (and itself) owned by $2, so a target under the home stays the user's. */
export const MOUNT_POINT_SCRIPT = `set -eu
mk() {
  [ -e "$1" ] && return 0
  mk "$(dirname -- "$1")" "$2"
  mkdir -- "$1"
  chown "$2:$2" -- "$1"
}
mk "$1" "$2"`;

const HINT =
  "the VM image's kernel needs virtiofs (rebuild it with `npm run build-vm-image`), and vfkit needs macOS 12 or later for virtio-fs; the instance's serial.log says more";

/**
 * Mounts every share that is not mounted yet: `mount -t virtiofs TAG TARGET` as root (`-o ro`
 * for a read-only one), after making the mount point. Idempotent: a share already mounted with its
 * tag at its target (a start that found the VM running) is left alone. Every share is tried; one
 * BACKEND_ERROR then names each that failed with its tag, target and the guest's stderr (details:
 * failed tags), so the caller can tell a failed workspace (fatal) from a failed credential.
 */
export async function mountShares(guest: GuestExec, shares: readonly VzShare[]): Promise<void> {
  if (shares.length === 0) return;
  const mounted = await virtiofsMounts(guest);
  const failures: { tag: string; target: string; why: string }[] = [];
  for (const s of shares) {
    if (mounted.some((m) => m.tag === s.tag && m.target === s.target)) continue;
    const mk = await runCollect(guest, {
      argv: ["sh", "-c", MOUNT_POINT_SCRIPT, "shed-mount-point", s.target, GUEST_USER],
      user: "root",
    });
    if (mk.exitCode !== 0) {
      failures.push({ tag: s.tag, target: s.target, why: lastLines(mk.stderr) || `mkdir exited ${mk.exitCode}` });
      continue;
    }
    const r = await runCollect(guest, { argv: mountArgv(s), user: "root" });
    if (r.exitCode !== 0) {
      failures.push({ tag: s.tag, target: s.target, why: lastLines(r.stderr) || `mount exited ${r.exitCode}` });
    }
  }
  if (failures.length === 0) return;
  throw new ShedError(
    "BACKEND_ERROR",
    failures.map((f) => `could not mount the virtio-fs share ${f.tag} at ${f.target} in the VM: ${f.why}`).join("; "),
    { hint: HINT, details: { failed: failures.map((f) => ({ tag: f.tag, target: f.target })) } },
  );
}

/** The guest's mount command for one share (a fixed argv; the tag is the one vfkit's device has). */
export function mountArgv(s: VzShare): string[] {
  return ["mount", "-t", "virtiofs", ...(s.readonly ? ["-o", "ro"] : []), s.tag, s.target];
}

/** virtiofs mounts in the guest's /proc/self/mounts, its octal escapes (\040 for a space...) undone. */
async function virtiofsMounts(guest: GuestExec): Promise<{ tag: string; target: string }[]> {
  const r = await runCollect(guest, { argv: ["cat", "/proc/self/mounts"], user: "root" });
  if (r.exitCode !== 0) return [];
  return r.stdout.split("\n").flatMap((line) => {
    const [source, target, type] = line.split(" ");
    if (type !== "virtiofs" || source === undefined || target === undefined) return [];
    return [{ tag: unescapeMountField(source), target: unescapeMountField(target) }];
  });
}

export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

function lastLines(stderr: string): string {
  return stderr.trim().split("\n").slice(-3).join("; ").slice(0, 400);
}
