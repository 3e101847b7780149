import type { Command } from "@commander-js/extra-typings";
import { HOOK_NAMES, type HookName } from "../../config/provision-file.js";
import { ShedError } from "../../core/errors.js";
import { validateShedName } from "../../core/names.js";
import type { HookStatus, Shed } from "../../core/types.js";
import { CliContext, type GlobalOptions } from "../context.js";
import { safeLine } from "../safe-text.js";
import { runSsh } from "../ssh-run.js";
import { table } from "../table.js";
import { describeShed } from "./describe.js";

/** status, logs, provision: seeing and re-running a shed's provisioning. */
export function registerProvisionCommands(program: Command<[], GlobalOptions>): void {
  program
    .command("status <name>")
    .description("show a shed with its provisioning: each hook's last run and the provision.yaml warnings")
    .action(async (name) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      const { api } = await ctx.server();
      const shed = await api.json<Shed>("GET", `/api/sheds/${name}`);
      ctx.result(shed, () => `${describeShed(shed)}\n${describeProvision(shed)}`);
    });

  program
    .command("logs <name> [hook]")
    .description("print a hook's log (install, startup or shutdown; all of them without a hook)")
    .option("-f, --follow", "keep printing as the log grows")
    .action(async (name, hook, opts) => {
      const ctx = new CliContext(program.opts());
      const hooks = hook === undefined ? [...HOOK_NAMES] : [parseHook(hook)];
      const files = hooks.map((h) => `/var/log/shed/${h}.log`);
      // A fixed script: the files and the follow flag are positional parameters. A log over the server's
      // hook_log_max_size was emptied and its last part kept as <log>.rotated (guest/hook-script.ts): say so.
      const script = [
        "follow=$1; shift",
        'for f; do [ -f "$f.rotated" ] && echo "shed: older output of $f was rotated away (the log reached the' +
          " server's hook_log_max_size); its last part is in $f.rotated\" >&2; done",
        'if [ "$follow" = yes ]; then exec tail -n +1 -F "$@"; fi',
        'found=0; for f; do [ -f "$f" ] && found=1; done',
        'if [ $found = 0 ]; then echo "shed: no log yet: the hook has not run ($*)" >&2; exit 1; fi',
        'if [ $# -eq 1 ]; then exec cat -- "$1"; fi',
        'for f; do [ -f "$f" ] && { printf "==> %s <==\\n" "$f"; cat -- "$f"; }; done',
      ].join("\n");
      process.exitCode = await runSsh(ctx, name, {
        argv: ["sh", "-c", script, "shed-logs", opts.follow ? "yes" : "no", ...files],
      });
    });

  program
    .command("provision <name>")
    .description("re-run provisioning: install (even if it ran), PATH capture and startup; or one --hook")
    .option("--hook <hook>", "run only this hook: install, startup or shutdown")
    .action(async (name, opts) => {
      const ctx = new CliContext(program.opts());
      validateShedName(name);
      const hook = opts.hook === undefined ? undefined : parseHook(opts.hook);
      const { api } = await ctx.server();
      let hookFailed = false;
      let shed: Shed | undefined;
      try {
        const last = await api.operation(
          "POST",
          `/api/sheds/${name}/provision`,
          hook ? { hook } : {},
          (ev) => {
            if (ev.type === "warning" && ev.step.endsWith("_hook")) hookFailed = true;
            ctx.out.progress(ev);
          },
          (b) => ctx.out.printed(b),
        );
        shed = last?.type === "result" ? last.shed : undefined;
      } finally {
        ctx.out.done();
      }
      if (shed) ctx.result(shed, () => describeProvision(shed as Shed));
      // A hook that failed is a warning for the shed, but this command was asked to run it: say so in the exit code.
      if (hookFailed) process.exitCode = 1;
    });
}

function parseHook(value: string): HookName {
  if ((HOOK_NAMES as readonly string[]).includes(value)) return value as HookName;
  throw new ShedError("INVALID_REQUEST", `unknown hook ${JSON.stringify(value)}`, {
    hint: `use one of ${HOOK_NAMES.join(", ")}`,
  });
}

export function describeProvision(shed: Shed): string {
  const p = shed.provision;
  if (!p) return "provision: unknown (server without provisioning)";
  if (!p.file_found) return "provision: no .shed/provision.yaml in the workspace";
  // Fields from the server are one line each (safeLine): a line break in one must not forge another line.
  const lines = [
    `provision: ${p.source ? `${safeLine(p.source)} (no .shed/provision.yaml)` : ".shed/provision.yaml"}${p.env.length ? ` (env: ${safeLine(p.env.join(", "))})` : ""}`,
  ];
  // devcontainer.json: whose the shed's work is, and which of its properties each stage runs.
  if (p.user) lines.push(`  user: ${safeLine(p.user)} (remoteUser; hooks, commands, workspace and credentials)`);
  if (p.source) {
    for (const h of HOOK_NAMES) {
      const script = p.hooks[h].script;
      if (script?.startsWith(`${p.source}: `))
        lines.push(`  ${h} stage: ${safeLine(script.slice(p.source.length + 2))}`);
    }
  }
  lines.push(
    table(
      ["  HOOK", "STATE", "EXIT", "TOOK", "STARTED", "LOG"],
      HOOK_NAMES.map((h) => hookRow(h, p.hooks[h])),
    ),
  );
  for (const h of HOOK_NAMES) {
    const run = p.hooks[h];
    if (run.state === "failed" || run.state === "timed_out") {
      lines.push(`  ${h}: ${safeLine(run.message ?? run.state)}`);
      for (const l of run.tail?.slice(-5) ?? []) lines.push(`    | ${safeLine(l)}`);
    }
  }
  if (p.path_added.length) lines.push(`  PATH added by install: ${safeLine(p.path_added.join(", "))}`);
  for (const w of p.warnings) lines.push(`  warning: ${safeLine(w)}`);
  return lines.join("\n");
}

function hookRow(h: HookName, run: HookStatus): string[] {
  return [
    `  ${h}`,
    run.state.replace("_", " "),
    run.exit_code === undefined ? "" : String(run.exit_code),
    run.duration_ms === undefined ? "" : `${run.duration_ms}ms`,
    run.started_at ? run.started_at.slice(0, 19).replace("T", " ") : "",
    run.state === "never_run" ? "" : run.log,
  ];
}
