/**
 * The fixed script that runs one hook inside a guest, as user shed. Values
 * arrive as positional parameters only: $1 hook name, $2 script path (relative
 * to /workspace), $3 time limit in seconds, $4 log file, $7 the log's size cap
 * in bytes (hook_log_max_size), $8 LOG_ROTATE_SCRIPT.
 *
 * - The previous log is kept as <log>.1: a copy of its last $7 bytes. The log
 *   itself is emptied, never renamed or removed: a daemon an earlier run left
 *   behind writes into this one file (its fd is O_APPEND, so it goes on at the
 *   new end), which the rotation bounds. A renamed or unlinked file a daemon
 *   held would grow where nothing watches it.
 * - A log rotator (LOG_ROTATE_SCRIPT) is started unless one runs already.
 * - The script must resolve (symlinks included) inside /workspace.
 * - chmod +x first if needed (seed: Debugging).
 * - `bash --login -c` (seed: PATH Propagation) under `timeout`, which kills
 *   the hook's whole process group at the limit (and SIGKILLs 5 s later).
 *   timeout(1) stops watching once the hook's own process is gone, so what
 *   ignored the TERM and outlived it is SIGKILLed here after the same 5 s: a
 *   timed-out hook leaves no process behind (a hook that ends in time keeps
 *   its daemons). $3 always has three decimals: "2.000" is 2000 ms.
 * - Output goes to the log file, not to a pipe: when the hook's own process
 *   exits the hook is over, even if it left a daemon holding its stdout
 *   (pg_ctl start, redis-server &); the daemon keeps writing to the file and
 *   is never killed by SIGPIPE. $6 says who streams the log: "exec", a copy
 *   loop here, onto this exec's stdout; "host", the server, which reads the
 *   file where the backend keeps it (guest/hook-runner.ts): the script then
 *   only says on stderr when the new log is there (`__SHED_LOG_OPEN__`).
 * - $5, when not empty, is the install state file: written (temp file, then
 *   rename) only when the hook exited 0, in the same exec, so "done" can never
 *   be recorded for a run that failed or was cut off.
 * - $9 "1": when the state file $5 exists already, nothing runs and the
 *   log is left as it is; stderr says `__SHED_HOOK_DONE__`. The install reads
 *   the state file in its own exec this way (no exec of its own).
 * - $10, when not empty, is the PATH probe (guest/path-capture.ts), run with
 *   $11 and $12 as its arguments before the hook and again after it
 *   exited 0; each output goes to stderr base64-encoded on one line,
 *   `__SHED_PATH_BEFORE__ <b64>` and `__SHED_PATH_AFTER__ <b64>`. PATH
 *   capture then costs no exec of its own.
 * - $13, when not empty, is a fixed script of Shed's run instead of a file of
 *   the workspace (`bash --login -c $13 $2 $14`): devcontainer.json's stages
 *   (guest/devcontainer-stage.ts), whose commands are $14.
 * - The last line on stderr is `__SHED_HOOK__ <exit code> <milliseconds>`.
 */
export const HOOK_RESULT_MARK = "__SHED_HOOK__";
export const LOG_OPEN_MARK = "__SHED_LOG_OPEN__";
export const HOOK_DONE_MARK = "__SHED_HOOK_DONE__";
export const PATH_MARK = { before: "__SHED_PATH_BEFORE__", after: "__SHED_PATH_AFTER__" } as const;
export type LogFollower = "exec" | "host";

/**
 * Bash expansions HOOK_SCRIPT uses instead of a program: every process a hook
 * run starts is a fork and exec, which a busy host makes slow. They are kept
 * out of the String.raw template below, where `${` would be a placeholder.
 * EPOCHREALTIME (bash 5) has six decimals: its digits are microseconds; an
 * older bash asks date(1).
 */
const SCRIPT_EXPANSIONS = `dir=\${log%/*}
limit_ms=\${limit//./}
clock() {
  if [ "$BASH_VERSINFO" -ge 5 ]; then REPLY=\${EPOCHREALTIME//[!0-9]/}; else REPLY=$(( $(date +%s%N) / 1000 )); fi
}`;

export const HOOK_SCRIPT = String.raw`set -u
hook=$1 script=$2 limit=$3 log=$4 state=$5 follower=$6 max=$7 rotate=$8
shift 8
skipdone=$1 probe=$2 probe_mise=$3 probe_list=$4 inline=$5 inline_arg=$6
if [ "$skipdone" = 1 ] && [ -n "$state" ] && [ -e "$state" ]; then echo "${HOOK_DONE_MARK}" >&2; exit 0; fi
path_probe() {
  [ -n "$probe" ] || return 0
  printf '%s %s\n' "$1" "$(sh -c "$probe" shed-path "$probe_mise" "$probe_list" | base64 -w0)" >&2
}
${SCRIPT_EXPANSIONS}
if [ -e "$log" ]; then
  { tail -c "$max" -- "$log" >"$log.1.tmp" && mv -f -- "$log.1.tmp" "$log.1"; } || exit 70
fi
if [ -e "$log.rotated" ] || [ -L "$log.rotated" ]; then rm -f -- "$log.rotated"; fi
: >"$log" || { echo "shed: cannot write $log" >&2; exit 70; }
printf '%s\n' "$max" >"$dir/.shed-log-max-size"
# Detached (own session: a timed-out hook's group kill spares it). One rotator per directory: a new one
# waits a little longer than a running one takes to see that no process holds a log any more and exit,
# so a run that starts just as the old rotator leaves is still watched.
setsid -f flock -w 15 "$dir/.shed-log-rotate.lock" bash -c "$rotate" shed-log-rotate "$dir" </dev/null >/dev/null 2>&1
if [ -n "$inline" ]; then
  # A fixed runner of Shed's (devcontainer.json's stages), not a file of the repository's.
  set -- bash --login -c "$inline" "$script" "$inline_arg"
else
target=$(realpath -e -- "/workspace/$script" 2>/dev/null) || {
  echo "shed: $hook hook: $script does not exist in /workspace" >&2; exit 71; }
case $target in
  /workspace/*) ;;
  *) echo "shed: $hook hook: $script resolves to $target, outside /workspace; refused" >&2; exit 72 ;;
esac
[ -f "$target" ] || { echo "shed: $hook hook: $script is not a file" >&2; exit 71; }
[ -x "$target" ] || chmod +x -- "$target" 2>/dev/null || sudo -n chmod +x -- "$target" 2>/dev/null
if [ -x "$target" ]; then set -- bash --login -c 'exec "$0"' "$target"; else set -- bash --login "$target"; fi
fi
path_probe ${PATH_MARK.before}
clock
start=$REPLY
timeout --kill-after=5 "$limit" "$@" </dev/null >>"$log" 2>&1 &
pid=$!
# Stopped from outside (create's --timeout, a shutdown): take the hook's process group down too.
trap 'kill -TERM -- "-$pid" 2>/dev/null' TERM
if [ "$follower" = host ]; then
  echo "${LOG_OPEN_MARK}" >&2
  wait "$pid"
  code=$?
  # A trapped TERM interrupts wait; the hook is still being taken down: wait for its own status.
  while kill -0 "$pid" 2>/dev/null; do wait "$pid"; code=$?; done
else
  # Stream the log: every 20 ms while the hook runs, and once more when it has
  # exited, copy what is new, up to where the log ends at that moment (fd 3's
  # read offset moves on; a daemon writing faster than we copy can't hold us).
  exec 3<"$log"
  drain() {
    local size pos=0 k v
    size=$(stat -c %s -- "$log") || return 0
    while read -r k v; do [ "$k" = pos: ] && pos=$v; done <"/proc/$$/fdinfo/3"
    # Rotated (emptied) since the last copy: go on from its new start.
    if [ "$size" -lt "$pos" ]; then exec 3<"$log"; pos=0; fi
    if [ "$size" -gt "$pos" ]; then head -c "$((size - pos))" <&3; fi
  }
  while kill -0 "$pid" 2>/dev/null; do
    drain
    sleep 0.02
  done
  drain
  exec 3<&-
  wait "$pid"
  code=$?
fi
clock
ms=$(( (REPLY - start) / 1000 ))
if [ "$code" = 124 ] && [ "$ms" -ge $(( 10#$limit_ms - 50 )) ]; then
  for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null
fi
if [ "$code" = 0 ] && [ -n "$state" ]; then
  printf '{"completed_at":"%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$state.tmp" && mv -f -- "$state.tmp" "$state" ||
    echo "shed: could not write $state" >&2
fi
if [ "$code" = 0 ]; then path_probe ${PATH_MARK.after}; fi
echo "${HOOK_RESULT_MARK} $code $ms" >&2
`;

/**
 * Keeps each hook log in $1 (the log directory) at most about
 * `.shed-log-max-size` bytes, so a daemon a hook left behind cannot fill the
 * disk. Once a second it checks the logs' sizes; one over the cap has its last
 * half-cap bytes copied to <log>.rotated (replacing the previous part) and is
 * emptied in place: writers hold it O_APPEND, so they go on at its new start,
 * and the server's follower (guest/file-follower.ts) starts over when the file
 * shrinks. A line in the log says what happened, for `shed logs` and the live
 * stream. What is written between the copy and the emptying is lost.
 *
 * It runs as long as a process of this user holds a log open (checked every
 * 10 s), then exits; the next hook run starts it again.
 */
export const LOG_ROTATE_SCRIPT = String.raw`set -u
dir=$1 tick=0
while :; do
  read -r max <"$dir/.shed-log-max-size" || max=67108864
  for f in "$dir"/*.log; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    size=$(stat -c %s -- "$f") || continue
    [ "$size" -gt "$max" ] || continue
    tail -c "$((max / 2))" -- "$f" >"$f.rotated.tmp" && mv -f -- "$f.rotated.tmp" "$f.rotated"
    # One open truncates and writes the note at offset 0: whatever a daemon appended in between is
    # overwritten, so the note always starts the log (with >> it could land after the daemon's bytes).
    printf '[shed: this log reached %s bytes, over hook_log_max_size (%s); older output was rotated away, its last part is in %s]\n' \
      "$size" "$max" "$f.rotated" >"$f"
  done
  tick=$((tick + 1))
  if [ $((tick % 10)) = 0 ] && [ -z "$(find /proc/[0-9]*/fd -maxdepth 1 -lname "$dir/*.log" -print -quit 2>/dev/null)" ]; then
    exit 0
  fi
  sleep 1
done
`;
