/**
 * direct-tcpip (ssh -L, IDE Remote-SSH) reaches the shed's own loopback: a fixed
 * bash script inside the guest connects with /dev/tcp and copies both ways.
 * The port is a positional parameter, never pasted into the script.
 */
/** Written to stderr once the guest side is connected. */
export const FORWARD_CONNECTED = "shed-forward-connected";

export const FORWARD_SCRIPT = [
  '{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || exit 1',
  `echo ${FORWARD_CONNECTED} >&2`,
  "exec 4<&0",
  "cat <&3 2>/dev/null & r=$!",
  "cat <&4 >&3 2>/dev/null & w=$!",
  "exec 3<&- 4<&-",
  "trap 'kill $r $w 2>/dev/null' HUP TERM EXIT",
  "wait $r",
].join("\n");

export function forwardArgv(port: number): string[] {
  return ["bash", "-c", FORWARD_SCRIPT, "shed-forward", String(port)];
}
