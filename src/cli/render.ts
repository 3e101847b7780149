import { formatDuration } from "../core/duration.js";
import type { ProgressEvent } from "../core/events.js";
import { LinePrefixer } from "../core/output-lines.js";
import { safeLine, safeText } from "./safe-text.js";

export interface Output {
  json: boolean;
  /** Progress goes to stderr so stdout stays for results. */
  progress(ev: ProgressEvent): void;
  /**
   * Output lines the server already marked with their step, ready to print.
   * Returns a promise when the terminal (or pipe) is behind: take no more until it settles.
   */
  printed(bytes: Uint8Array): Promise<void> | undefined;
  done(): void;
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const MARK: Record<string, string> = { succeeded: "✓", warning: "!", failed: "✗", skipped: "-" };

/**
 * Live progress of create/start/stop/delete: on a terminal a spinner on the
 * running step, rewritten in place; in a pipe or with --json, one plain line
 * per finished step (a line when a step starts as well would say it twice).
 * Step output (git, hooks) is printed as it arrives, prefixed with the step.
 *
 * Everything else here came from the server as text (step titles, messages,
 * warnings) and is printed with its control characters escaped (safe-text.ts).
 * Step output is not: it is the bytes the user's own hooks and git printed,
 * copied raw like the output of `ssh` or `docker exec`, so colours and
 * progress bars work.
 */
export function createOutput(json: boolean, stream: NodeJS.WriteStream = process.stderr): Output {
  const live = !json && stream.isTTY === true && process.env.TERM !== "dumb";
  let current: { step: string; title: string; started: number } | undefined;
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  const lines = new LinePrefixer();

  const clearLine = () => {
    if (live && current) stream.write("\r\x1b[2K");
  };
  const drawSpinner = () => {
    if (!live || !current) return;
    const secs = ((Date.now() - current.started) / 1000).toFixed(0);
    stream.write(`\r\x1b[2K${SPINNER[frame++ % SPINNER.length]} ${current.title} ${secs}s`);
  };
  const printBlock = (text: string | Uint8Array): Promise<void> | undefined => {
    clearLine();
    const ok = stream.write(text);
    drawSpinner();
    return ok ? undefined : new Promise((resolve) => stream.once("drain", resolve));
  };
  const printLine = (line: string) => printBlock(`${line}\n`);

  return {
    json,
    progress(ev) {
      switch (ev.type) {
        case "step":
          current = { step: ev.step, title: safeLine(ev.title), started: Date.now() };
          // In a pipe nothing yet: the step gets its one line when it ends (with output in between
          // marked with the step's name).
          if (live) {
            drawSpinner();
            timer ??= setInterval(drawSpinner, 100);
          }
          break;
        case "output": {
          const block = lines.push(ev.step, Buffer.from(ev.text));
          if (block.length) printBlock(block);
          break;
        }
        case "warning":
          printLine(
            `  ! warning (${safeLine(ev.step)}): ${safeText(ev.message)}${ev.hint ? `\n    hint: ${safeText(ev.hint)}` : ""}`,
          );
          break;
        case "step_end": {
          const rest = lines.end(ev.step);
          if (rest.length) printBlock(rest);
          const title = current?.step === ev.step ? current.title : safeLine(ev.step);
          const note = ev.outcome === "warning" ? "" : ev.message ? `: ${safeText(ev.message)}` : "";
          clearLine();
          current = undefined;
          stream.write(`${MARK[ev.outcome] ?? "?"} ${title} (${formatDuration(ev.duration_ms)})${note}\n`);
          break;
        }
        default:
          break;
      }
    },
    printed: printBlock,
    done() {
      if (timer) clearInterval(timer);
      timer = undefined;
      clearLine();
      // A step the operation never finished (the connection was cut): in a pipe, say which one it was.
      if (!live && current) stream.write(`… ${current.title} (did not finish)\n`);
      current = undefined;
    },
  };
}
