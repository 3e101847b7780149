/**
 * The fixed script that runs one hook inside a guest, as user shed. Values
 * arrive as positional parameters only: $1 hook name, $2 script path (relative
 * to /workspace), $3 time limit in seconds, $4 log file.
 *
 * - The previous log is kept as <log>.1.
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
 * - The last line on stderr is `__SHED_HOOK__ <exit code> <milliseconds>`.
 */
export const HOOK_RESULT_MARK = "__SHED_HOOK__";
export const LOG_OPEN_MARK = "__SHED_LOG_OPEN__";
export type LogFollower = "exec" | "host";

export const HOOK_SCRIPT = String.raw`set -u
hook=$1 script=$2 limit=$3 log=$4 state=$5 follower=$6
if [ -e "$log" ]; then mv -f -- "$log" "$log.1" || exit 70; fi
: >"$log" || { echo "shed: cannot write $log" >&2; exit 70; }
target=$(realpath -e -- "/workspace/$script" 2>/dev/null) || {
  echo "shed: $hook hook: $script does not exist in /workspace" >&2; exit 71; }
case $target in
  /workspace/*) ;;
  *) echo "shed: $hook hook: $script resolves to $target, outside /workspace; refused" >&2; exit 72 ;;
esac
[ -f "$target" ] || { echo "shed: $hook hook: $script is not a file" >&2; exit 71; }
[ -x "$target" ] || chmod +x -- "$target" 2>/dev/null || sudo -n chmod +x -- "$target" 2>/dev/null
if [ -x "$target" ]; then set -- bash --login -c 'exec "$0"' "$target"; else set -- bash --login "$target"; fi
start=$(date +%s%N)
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
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
limit_ms=$(printf '%s' "$limit" | tr -d .)
if [ "$code" = 124 ] && [ "$ms" -ge $(( 10#$limit_ms - 50 )) ]; then
  for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null
fi
if [ "$code" = 0 ] && [ -n "$state" ]; then
  printf '{"completed_at":"%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$state.tmp" && mv -f -- "$state.tmp" "$state" ||
    echo "shed: could not write $state" >&2
fi
echo "${HOOK_RESULT_MARK} $code $ms" >&2
`;
