/**
 * How `shed exec NAME -- CMD ARGS...` runs CMD in any guest: as a shell and
 * sshd would report a command that cannot run, the same on every backend.
 * Left to the engine, Docker prints `OCI runtime exec failed: ... executable
 * file not found in $PATH: unknown` on stdout and exits 126; a shell says
 * `CMD: command not found` on stderr and exits 127, and 126 with
 * `CMD: Permission denied` for a file it cannot execute.
 *
 * A fixed script does the lookup and then `exec`s the argv, which reaches it
 * as positional parameters: no argument is ever parsed by the shell, and the
 * program replaces the shell (same PID, signals and exit status as before).
 * It costs one `sh` start inside the guest, about a millisecond.
 */
const SCRIPT = [
  "case $1 in",
  "*/*)",
  `  if [ -d "$1" ]; then printf '%s: Is a directory\\n' "$1" >&2; exit 126; fi`,
  `  if [ ! -e "$1" ]; then printf '%s: No such file or directory\\n' "$1" >&2; exit 127; fi`,
  `  if [ ! -x "$1" ]; then printf '%s: Permission denied\\n' "$1" >&2; exit 126; fi ;;`,
  `*) command -v -- "$1" >/dev/null 2>&1 || { printf '%s: command not found\\n' "$1" >&2; exit 127; } ;;`,
  "esac",
  'exec "$@"',
].join("\n");

/** The argv that runs `argv` in a guest with a shell's exit codes and messages for a command that cannot run. */
export function userCommandArgv(argv: readonly string[]): string[] {
  return ["sh", "-c", SCRIPT, "shed-exec", ...argv];
}
