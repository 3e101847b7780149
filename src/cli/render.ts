import { formatDuration } from "../core/duration.js";
import type { ShedError } from "../core/errors.js";
import type { ProgressEvent } from "../core/events.js";

export interface Output {
  json: boolean;
  /** Progress goes to stderr so stdout stays for results. */
  progress(ev: ProgressEvent): void;
  done(): void;
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const MARK: Record<string, string> = { succeeded: "✓", warning: "!", failed: "✗", skipped: "-" };

/**
 * Live progress of create/start/stop/delete: on a terminal a spinner on the
 * running step, rewritten in place; in a pipe or with --json, plain lines.
 * Step output (git, hooks) is printed as it arrives, prefixed with the step.
 */
export function createOutput(json: boolean, stream: NodeJS.WriteStream = process.stderr): Output {
  const live = !json && stream.isTTY === true && process.env.TERM !== "dumb";
  let current: { step: string; title: string; started: number } | undefined;
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  const partial = new Map<string, string>();

  const clearLine = () => {
    if (live && current) stream.write("\r\x1b[2K");
  };
  const drawSpinner = () => {
    if (!live || !current) return;
    const secs = ((Date.now() - current.started) / 1000).toFixed(0);
    stream.write(`\r\x1b[2K${SPINNER[frame++ % SPINNER.length]} ${current.title} ${secs}s`);
  };
  const printBlock = (text: string) => {
    clearLine();
    stream.write(text);
    drawSpinner();
  };
  const printLine = (line: string) => printBlock(`${line}\n`);

  return {
    json,
    progress(ev) {
      switch (ev.type) {
        case "step":
          current = { step: ev.step, title: ev.title, started: Date.now() };
          if (live) {
            drawSpinner();
            timer ??= setInterval(drawSpinner, 100);
          } else stream.write(`… ${ev.title}\n`);
          break;
        case "output": {
          const text = (partial.get(ev.step) ?? "") + ev.text;
          const cut = text.lastIndexOf("\n");
          partial.set(ev.step, text.slice(cut + 1));
          if (cut < 0) break;
          // One write per event, not per line: hooks can print hundreds of megabytes.
          const prefix = `  [${ev.step.replace(/_hook$/, "")}] `;
          const body = text.slice(0, cut);
          if (!body.includes("\r")) {
            printBlock(`${prefix}${body.replaceAll("\n", `\n${prefix}`)}\n`);
            break;
          }
          let block = "";
          for (const l of body.split("\n")) {
            // Progress meters rewrite a line with \r; show where each line ended up.
            const shown = l.slice(l.lastIndexOf("\r") + 1);
            if (shown.trim() !== "") block += `${prefix}${shown}\n`;
          }
          if (block) printBlock(block);
          break;
        }
        case "warning":
          printLine(`  ! warning (${ev.step}): ${ev.message}${ev.hint ? `\n    hint: ${ev.hint}` : ""}`);
          break;
        case "step_end": {
          const rest = partial.get(ev.step);
          if (rest?.trim()) printLine(`  [${ev.step.replace(/_hook$/, "")}] ${rest.slice(rest.lastIndexOf("\r") + 1)}`);
          partial.delete(ev.step);
          const title = current?.step === ev.step ? current.title : ev.step;
          const note = ev.outcome === "warning" ? "" : ev.message ? `: ${ev.message}` : "";
          clearLine();
          current = undefined;
          stream.write(`${MARK[ev.outcome] ?? "?"} ${title} (${formatDuration(ev.duration_ms)})${note}\n`);
          break;
        }
        default:
          break;
      }
    },
    done() {
      if (timer) clearInterval(timer);
      timer = undefined;
      clearLine();
    },
  };
}

export function formatError(e: ShedError): string {
  return `error: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ""}\n`;
}
