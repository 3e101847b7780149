import { type GuestExec, runCollect } from "./exec.js";
import { writeGuestFile } from "./files.js";

/**
 * PATH propagation (seed): after the install hook, find the PATH a new
 * interactive login shell of user shed sees (installers edit ~/.bashrc, which
 * Debian's default .bashrc only applies to interactive shells), plus mise
 * shims, and persist the entries the install added to
 * /etc/profile.d/shed-installed-tools.sh. The image's own entries are neither
 * frozen nor reordered: the profile script only prepends what is missing.
 */
export const INSTALLED_TOOLS_PROFILE = "/etc/profile.d/shed-installed-tools.sh";
export const INSTALLED_PATH_LIST = "/var/lib/shed/installed-path";
export const MISE_SHIMS = "/home/shed/.local/share/mise/shims";

const BEGIN = "__SHED_PATH_BEGIN__";
const END = "__SHED_PATH_END__";
// rc files may print, prompt or hang: stdin is empty, the value is marked, and time is bounded.
const PROBE = `timeout -k 2 15 bash --login -i -c 'printf "\\n${BEGIN}%s${END}\\n" "$PATH"' </dev/null 2>/dev/null`;

export interface PathSnapshot {
  /** PATH of an interactive login shell, in order. */
  login: string[];
  /** PATH a plain exec sees (the image's environment). */
  image: string[];
}

export async function snapshotPath(guest: GuestExec, env: Record<string, string>): Promise<PathSnapshot> {
  const r = await runCollect(guest, { argv: ["sh", "-c", `${PROBE}; printf '%s' "$PATH"`], cwd: "/workspace", env });
  const m = new RegExp(`${BEGIN}(.*)${END}`).exec(r.stdout);
  if (!m) {
    throw new Error(
      "an interactive login shell of user shed did not report its PATH within 15s (does ~/.bashrc hang?)",
    );
  }
  const afterMarker = r.stdout.slice(r.stdout.lastIndexOf(END) + END.length).replace(/^\n/, "");
  return { login: splitPath(m[1] ?? ""), image: splitPath(afterMarker) };
}

export async function hasMiseShims(guest: GuestExec): Promise<boolean> {
  return (await runCollect(guest, { argv: ["test", "-d", MISE_SHIMS] })).exitCode === 0;
}

/** The entries of `after` that `before` lacks, in order; plus mise shims when present. */
export function addedEntries(before: string[], after: string[], miseShims: boolean): string[] {
  const seen = new Set(before);
  const added = after.filter((d) => !seen.has(d));
  if (miseShims && !added.includes(MISE_SHIMS) && !seen.has(MISE_SHIMS)) added.push(MISE_SHIMS);
  return [...new Set(added)];
}

export async function persistInstalledPath(guest: GuestExec, added: string[]): Promise<void> {
  await writeGuestFile(guest, INSTALLED_PATH_LIST, added.map((d) => `${d}\n`).join(""));
  const listed = added.length ? added.map((d) => `#   ${d}`).join("\n") : "#   (none)";
  const profile = [
    "# Written by shed after the install hook (PATH propagation).",
    "# PATH entries the install added, prepended when missing (the list is in",
    `# ${INSTALLED_PATH_LIST}):`,
    listed,
    `if [ -r ${INSTALLED_PATH_LIST} ]; then`,
    "  shed_add=",
    "  while IFS= read -r shed_dir; do",
    '    [ -n "$shed_dir" ] || continue',
    '    case ":$PATH:$shed_add" in *":$shed_dir:"*) ;; *) shed_add="$shed_add$shed_dir:" ;; esac',
    `  done < ${INSTALLED_PATH_LIST}`,
    '  PATH="$shed_add$PATH"',
    "  export PATH",
    "  unset shed_add shed_dir",
    "fi",
    "",
  ].join("\n");
  await writeGuestFile(guest, INSTALLED_TOOLS_PROFILE, profile);
}

function splitPath(value: string): string[] {
  // Entries with control characters cannot be written safely to the list or shown; they are dropped.
  return value
    .trim()
    .split(":")
    .filter((d) => d.length > 0 && !/[\x00-\x1f]/.test(d));
}
