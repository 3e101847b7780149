import type { StageCommand } from "../config/devcontainer/map.js";
import type { SimpleCommand } from "../config/devcontainer/parse.js";

/**
 * Runs one stage of devcontainer.json lifecycle commands inside the guest,
 * under the fixed hook script (guest/hook-script.ts: log, timeout, state file,
 * PATH probe), which starts it with `bash --login -c`: so every command gets a
 * login shell's environment, the reference tool's default userEnvProbe.
 *
 * The commands arrive as one positional parameter, never as shell text: base64
 * of NUL-separated tokens, per property `P NAME FORM`, where FORM is
 * `S COMMAND` (a string: /bin/sh -c COMMAND), `A N ARG...` (an array: argv, no
 * shell) or `O K` followed by K times `ENTRY FORM` (an object: its entries in
 * parallel, each output line marked `[ENTRY]`; it fails if any fails).
 * Properties run in order; the first failure stops the stage, and its last
 * line says which property failed with which exit code (read back by
 * describeStageFailure).
 */
export const STAGE_FAILED_PREFIX = "shed: devcontainer.json:";

export function encodeStage(commands: readonly StageCommand[]): string {
  const tokens: string[] = [];
  const simple = (c: SimpleCommand) => {
    if (c.kind === "shell") tokens.push("S", c.command);
    else tokens.push("A", String(c.argv.length), ...c.argv);
  };
  for (const { property, command } of commands) {
    tokens.push("P", property);
    if (command.kind === "parallel") {
      tokens.push("O", String(command.entries.length));
      for (const e of command.entries) {
        tokens.push(e.name);
        simple(e.command);
      }
    } else simple(command);
  }
  return Buffer.from(tokens.map((t) => `${t}\0`).join(""), "utf8").toString("base64");
}

export const STAGE_RUNNER = `set -u
toks=()
while IFS= read -r -d '' t; do toks+=("$t"); done < <(printf '%s' "$1" | base64 -d)
i=0
# Reads one FORM at toks[i] into the array "form" (the argv to run) and moves i past it.
read_form() {
  local kind=\${toks[i]}
  i=$((i + 1))
  if [ "$kind" = S ]; then
    form=(/bin/sh -c "\${toks[i]}")
    i=$((i + 1))
  else
    local n=\${toks[i]}
    i=$((i + 1))
    # env(1) runs the program itself: no shell function or builtin stands in for it.
    form=(env -- "\${toks[@]:i:n}")
    i=$((i + n))
  fi
}
while [ "$i" -lt "\${#toks[@]}" ]; do
  i=$((i + 1))
  prop=\${toks[i]}
  i=$((i + 1))
  echo "[shed] devcontainer.json: $prop"
  if [ "\${toks[i]}" = O ]; then
    i=$((i + 1))
    k=\${toks[i]}
    i=$((i + 1))
    pids=() names=()
    for ((e = 0; e < k; e++)); do
      name=\${toks[i]}
      i=$((i + 1))
      read_form
      ( set -o pipefail
        "\${form[@]}" </dev/null 2>&1 | while IFS= read -r line || [ -n "$line" ]; do printf '[%s] %s\\n' "$name" "$line"; done ) &
      pids+=("$!") names+=("$name")
    done
    failed=0
    for ((e = 0; e < k; e++)); do
      wait "\${pids[e]}"
      c=$?
      if [ "$c" -ne 0 ]; then
        echo "[shed] devcontainer.json: $prop: \${names[e]} exited with $c"
        [ "$failed" -ne 0 ] || failed=$c
      fi
    done
    c=$failed
  else
    read_form
    "\${form[@]}" </dev/null
    c=$?
  fi
  if [ "$c" -ne 0 ]; then
    echo "${STAGE_FAILED_PREFIX} $prop failed with exit code $c"
    exit "$c"
  fi
done
exit 0
`;

/** "devcontainer.json: postCreateCommand failed with exit code 2", from the last lines of a failed stage's output. */
export function describeStageFailure(tail: readonly string[] | undefined): string | undefined {
  const line = [...(tail ?? [])].reverse().find((l) => l.startsWith(STAGE_FAILED_PREFIX));
  return line?.slice("shed: ".length);
}
