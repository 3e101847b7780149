import { type GuestExec, runCollect } from "./exec.js";

/**
 * PATH propagation (seed): after the install hook, find the PATH a new
 * interactive login shell of the hooks' user (shed, or a devcontainer.json's
 * remoteUser) sees (installers edit ~/.bashrc, which Debian's default .bashrc
 * only applies to interactive shells), plus that user's mise shims, and persist the entries the install added to
 * /etc/profile.d/shed-installed-tools.sh. The image's own entries are neither
 * frozen nor reordered: the profile script only prepends what is missing.
 */
export const INSTALLED_TOOLS_PROFILE = "/etc/profile.d/shed-installed-tools.sh";
export const INSTALLED_PATH_LIST = "/var/lib/shed/installed-path";
/** Where mise keeps its shims, under the home of the user it was installed for. */
export const MISE_SHIMS_IN_HOME = ".local/share/mise/shims";

const BEGIN = "__SHED_PATH_BEGIN__";
const END = "__SHED_PATH_END__";
/**
 * The probe, `sh -c PATH_PROBE shed-path MISE_SHIMS_IN_HOME INSTALLED_PATH_LIST`. rc
 * files may print, prompt or hang: stdin is empty, the value is marked, and
 * time is bounded. Then the PATH a plain exec sees, the user's mise shims if they exist,
 * and whether an earlier capture left an entry list. The install hook's run
 * takes it before and after the hook (guest/hook-script.ts); snapshotPath
 * runs it on its own.
 */
export const PATH_PROBE = [
  `timeout -k 2 15 bash --login -i -c 'printf "\\n${BEGIN}%s${END}\\n" "$PATH"' </dev/null 2>/dev/null`,
  `printf '%s\\n' "$PATH"`,
  'if [ -d "$HOME/$1" ]; then echo "mise $HOME/$1"; else echo no-mise; fi',
  'if [ -e "$2" ]; then echo list; else echo no-list; fi',
].join("\n");
export const PATH_PROBE_ARGS = [MISE_SHIMS_IN_HOME, INSTALLED_PATH_LIST] as const;

export interface PathSnapshot {
  /** PATH of an interactive login shell, in order. */
  login: string[];
  /** PATH a plain exec sees (the image's environment). */
  image: string[];
  /** The user's mise shims folder, when it exists. */
  miseShims: string | undefined;
  /** INSTALLED_PATH_LIST exists: an earlier capture wrote entries that may need taking back. */
  listed: boolean;
}

export async function snapshotPath(
  guest: GuestExec,
  env: Record<string, string>,
  user?: string,
): Promise<PathSnapshot> {
  const r = await runCollect(guest, {
    argv: ["sh", "-c", PATH_PROBE, "shed-path", ...PATH_PROBE_ARGS],
    cwd: "/workspace",
    env,
    ...(user ? { user } : {}),
  });
  return parsePathProbe(r.stdout);
}

/** The probe's output as a snapshot; throws when the login shell never reported its PATH. */
export function parsePathProbe(stdout: string): PathSnapshot {
  const m = new RegExp(`${BEGIN}(.*)${END}\n`).exec(stdout);
  if (!m) {
    throw new Error(
      "an interactive login shell of the hooks' user did not report its PATH within 15s (does ~/.bashrc hang?)",
    );
  }
  const [image = "", mise = "", list = ""] = stdout.slice(m.index + m[0].length).split("\n");
  const miseShims = mise.startsWith("mise /") ? mise.slice("mise ".length) : undefined;
  return { login: splitPath(m[1] ?? ""), image: splitPath(image), miseShims, listed: list === "list" };
}

/** The entries of `after` that `before` lacks, in order; plus the mise shims folder when present. */
export function addedEntries(before: string[], after: string[], miseShims: string | undefined): string[] {
  const seen = new Set(before);
  const added = after.filter((d) => !seen.has(d));
  if (miseShims && !added.includes(miseShims) && !seen.has(miseShims)) added.push(miseShims);
  return [...new Set(added)];
}

/** Writes the entry list and the profile script in one exec, each atomically (temp file, rename). */
export async function persistInstalledPath(guest: GuestExec, added: string[]): Promise<void> {
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
  // /var/lib/shed exists: create made it (prepareGuest).
  const write = [
    'cat >"$1.tmp" && mv -f "$1.tmp" "$1"',
    'printf "%s" "$3" >"$2.tmp" && chmod 0644 "$2.tmp" && mv -f "$2.tmp" "$2"',
  ].join(" && ");
  const r = await runCollect(
    guest,
    { argv: ["sh", "-c", write, "shed-path", INSTALLED_PATH_LIST, INSTALLED_TOOLS_PROFILE, profile], user: "root" },
    added.map((d) => `${d}\n`).join(""),
  );
  if (r.exitCode !== 0) throw new Error(`could not write ${INSTALLED_TOOLS_PROFILE}: ${r.stderr.trim()}`);
}

function splitPath(value: string): string[] {
  // Entries with control characters cannot be written safely to the list or shown; they are dropped.
  return (
    value
      .trim()
      .split(":")
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is filtered out
      .filter((d) => d.length > 0 && !/[\x00-\x1f]/.test(d))
  );
}
