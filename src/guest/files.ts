import { type GuestExec, runCollect } from "./exec.js";

/** Writes a file in the guest atomically (temp file + rename), content on stdin, never in argv. */
export async function writeGuestFile(
  guest: GuestExec,
  path: string,
  content: string,
  opts: { user?: string; mode?: string } = {},
): Promise<void> {
  const r = await runCollect(
    guest,
    {
      argv: [
        "sh",
        "-c",
        'mkdir -p "${1%/*}" && cat >"$1.tmp" && chmod "$2" "$1.tmp" && mv -f "$1.tmp" "$1"',
        "shed-write",
        path,
        opts.mode ?? "0644",
      ],
      user: opts.user ?? "root",
    },
    content,
  );
  if (r.exitCode !== 0) throw new Error(`could not write ${path} in the shed: ${r.stderr.trim()}`);
}

/** Reads a file from the guest; undefined when it does not exist. */
export async function readGuestFile(guest: GuestExec, path: string, user = "shed"): Promise<string | undefined> {
  const r = await runCollect(guest, {
    argv: ["sh", "-c", 'if [ -f "$1" ]; then cat -- "$1"; else exit 3; fi', "shed-read", path],
    user,
  });
  if (r.exitCode === 3) return undefined;
  if (r.exitCode !== 0) throw new Error(`could not read ${path} in the shed: ${r.stderr.trim()}`);
  return r.stdout;
}
