import { HOOK_LOG_DIR } from "./hook-runner.js";

/**
 * The fixed scripts that complete an image (complete-image.ts): values travel
 * only as positional parameters.
 */

/** How long the package manager may take (update and install together). */
export const INSTALL_TIMEOUT_S = 300;
/** The package manager's full output, in the shed (its tail is all a message shows). */
export const COMPLETION_LOG = `${HOOK_LOG_DIR}/image-complete.log`;
/** The summary, kept in the shed: what was done to its image, and proof it was done once. */
export const COMPLETION_STATE = "/var/lib/shed/image-completed";

/** Beyond the install's own bound (complete-image.ts): the rest of the script is quick; a guest that stops answering is given up on. */
export const EXEC_DEADLINE_MS = (INSTALL_TIMEOUT_S + 120) * 1000;

/** $1 manager, then packages. Output goes to the log (the caller redirects). */
export const INSTALL_SCRIPT = `m=$1
shift
case $m in
  apt-get)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"
    rc=$?
    rm -rf /var/lib/apt/lists/*
    exit $rc ;;
  apk) exec apk add --no-cache "$@" ;;
  *) exec "$m" install -y "$@" ;;
esac`;

/**
 * POSIX sh (the image may have no bash yet), no awk or getent. $1 "volume" or
 * "bind" (what /workspace is), $2 the install's timeout in seconds, $3 the
 * preferred uid and gid, $4 the log file, $5 INSTALL_SCRIPT. Prints one line
 * per fact, `@shed<TAB>KEY<TAB>VALUES...` (parseCompletion); exits 0 unless
 * the shell itself fails.
 */
export const COMPLETE_IMAGE_SCRIPT = `set -u
ws=$1 limit=$2 want=$3 log=$4 inst=$5
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH
state=${COMPLETION_STATE}
mkdir -p /var/log/shed /var/lib/shed
: >"$state"
have() { command -v "$1" >/dev/null 2>&1; }
out() { { printf '@shed'; printf '\\t%s' "$@"; printf '\\n'; } | tee -a "$state"; }
# In file $1 (passwd or group form): with $2 "id", the name of the entry whose id is $3; with
# $2 "name", the id of the entry named $3.
entry() {
  e_n=
  while IFS=: read -r e_n _ e_i _ || [ -n "$e_n" ]; do
    if [ "$2" = id ] && [ "$e_i" = "$3" ]; then printf '%s\\n' "$e_n"; return 0; fi
    if [ "$2" = name ] && [ "$e_n" = "$3" ]; then printf '%s\\n' "$e_i"; return 0; fi
    e_n=
  done <"$1"
  return 1
}
holder() { entry "$1" id "$2"; }
id_of() { entry "$1" name "$2"; }
free_id() { f_i=$want; while holder "$1" "$f_i" >/dev/null; do f_i=$((f_i + 1)); done; printf '%s\\n' "$f_i"; }
add_line() { [ -z "$(tail -c 1 "$1" 2>/dev/null)" ] || printf '\\n' >>"$1"; printf '%s\\n' "$2" >>"$1"; }
is_busybox() { b_p=$(command -v "$1") || return 1; case $(readlink -f "$b_p" 2>/dev/null) in */busybox*) return 0 ;; esac; return 1; }

need=
for p in sudo bash git; do have "$p" || need="$need $p"; done
if [ -n "$need" ]; then
  pm=
  for m in apt-get apk dnf microdnf yum; do if have "$m"; then pm=$m; break; fi; done
  if [ -z "$pm" ]; then
    out no-manager $need
  else
    pkgs=$need
    case $need in *git*) pkgs="$pkgs ca-certificates" ;; esac
    start=$(date +%s)
    printf '[shed] the image lacks%s: installing%s with %s (at most %ss; its output goes to %s)\n' "$need" "$pkgs" "$pm" "$limit" "$log"
    if have timeout; then
      timeout -s KILL "$limit" sh -c "$inst" shed-install "$pm" $pkgs >>"$log" 2>&1 </dev/null
      rc=$?
    else
      sh -c "$inst" shed-install "$pm" $pkgs >>"$log" 2>&1 </dev/null &
      pid=$!
      # Its own output closed: a watchdog left sleeping must not hold the exec open.
      (
        sleep "$limit" &
        s=$!
        trap 'kill "$s"; exit 0' TERM
        wait "$s" && kill -KILL "$pid"
      ) >/dev/null 2>&1 </dev/null &
      dog=$!
      wait "$pid"
      rc=$?
      kill "$dog" 2>/dev/null
    fi
    took=$(($(date +%s) - start))
    printf '[shed] %s ended after %ss (exit %s)\n' "$pm" "$took" "$rc"
    got=
    left=
    for p in $need; do if have "$p"; then got="$got $p"; else left="$left $p"; fi; done
    [ -z "$got" ] || out installed "$pm" $got
    if [ "$rc" -ne 0 ] || [ -n "$left" ]; then
      if [ "$rc" -ne 0 ] && [ "$took" -ge "$limit" ]; then why="timed out after \${limit}s"; else why="exit $rc"; fi
      out install-failed "$pm" "$why" "$(tail -n 3 "$log" 2>/dev/null | tr '\\t\\n' '  ' | cut -c 1-300)"
    fi
  fi
fi

if ! id_of /etc/passwd shed >/dev/null; then
  printf '[shed] the image has no user shed: adding it\n'
  if [ -x /bin/bash ]; then shell=/bin/bash; else shell=$(command -v bash) || shell=/bin/sh; fi
  newgroup=
  gid=$(id_of /etc/group shed) || { gid=$(free_id /etc/group); newgroup=1; }
  uid=$(free_id /etc/passwd)
  if [ -n "$newgroup" ]; then
    if have groupadd; then groupadd -g "$gid" shed >>"$log" 2>&1
    elif is_busybox addgroup; then addgroup -g "$gid" shed >>"$log" 2>&1
    fi
    if ! id_of /etc/group shed >/dev/null; then
      add_line /etc/group "shed:x:$gid:"
      [ ! -f /etc/gshadow ] || add_line /etc/gshadow "shed:!::"
    fi
  fi
  gid=$(id_of /etc/group shed)
  method=
  if have useradd; then useradd -M -u "$uid" -g "$gid" -d /home/shed -s "$shell" shed >>"$log" 2>&1 && method=useradd
  elif is_busybox adduser; then adduser -D -H -u "$uid" -G shed -h /home/shed -s "$shell" shed >>"$log" 2>&1 && method=adduser
  fi
  if ! id_of /etc/passwd shed >/dev/null; then
    add_line /etc/passwd "shed:x:$uid:$gid::/home/shed:$shell"
    [ ! -f /etc/shadow ] || add_line /etc/shadow "shed:!:$(($(date +%s) / 86400)):0:99999:7:::"
    method=files
  fi
  uid=$(id_of /etc/passwd shed)
  mkdir -p /home/shed
  for f in /etc/skel/.[!.]* /etc/skel/..?* /etc/skel/*; do
    if [ -e "$f" ] && [ ! -e "/home/shed/\${f##*/}" ]; then cp -a "$f" /home/shed/ 2>>"$log"; fi
  done
  # The home exists already when credentials are mounted below it; those mounts keep their owner.
  mounts=$(cut -d ' ' -f 5 /proc/self/mountinfo 2>/dev/null | sed 's/\\\\040/ /g')
  own_tree() {
    if printf '%s\\n' "$mounts" | grep -Fxq -- "$1"; then return 0; fi
    chown -h shed:shed "$1"
    if [ ! -d "$1" ] || [ -L "$1" ]; then return 0; fi
    local f
    for f in "$1"/.[!.]* "$1"/..?* "$1"/*; do
      if [ -e "$f" ] || [ -L "$f" ]; then own_tree "$f"; fi
    done
  }
  own_tree /home/shed
  out user "$uid" "$gid" "$method"
  [ "$uid" = "$want" ] || out uid-holder "$(holder /etc/passwd "$want")"
fi

if have sudo; then
  mkdir -p /etc/sudoers.d
  printf 'shed ALL=(ALL) NOPASSWD:ALL\\n' >/etc/sudoers.d/shed && chmod 0440 /etc/sudoers.d/shed
  if [ -f /etc/sudoers ] && ! grep -Eq '^[#@]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers; then
    add_line /etc/sudoers '#includedir /etc/sudoers.d'
  fi
  out sudo
fi

chown shed:shed /var/log/shed /var/lib/shed "$state" "$log" 2>/dev/null
# An empty workspace volume is shed's, whoever the image made /workspace for (root, when it had none).
if [ "$ws" = volume ] && [ -d /workspace ] && [ -z "$(ls -A /workspace 2>/dev/null)" ]; then
  owner=$(ls -ldn /workspace | { read -r _ _ u _; printf '%s' "$u"; })
  if [ "$owner" != "$(id_of /etc/passwd shed)" ] && chown shed:shed /workspace; then out workspace; fi
fi

left=
for p in sudo bash git; do have "$p" || left="$left $p"; done
[ -z "$left" ] || out missing $left
exit 0`;
