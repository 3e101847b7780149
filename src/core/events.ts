import type { ErrorBody } from "./errors.js";
import type { Shed } from "./types.js";

/**
 * Progress of a lifecycle operation, as the server emits it (server-sent events)
 * and the CLI renders it. One `step` event opens each step; its `step_end`
 * closes it with the outcome. A `warning` means the step failed but the
 * operation goes on (seed: Error Handling); a failed fatal step ends with `error`.
 */
export type StepOutcome = "succeeded" | "warning" | "failed" | "skipped";

export type ProgressEvent =
  | { type: "step"; step: string; title: string }
  | { type: "step_end"; step: string; outcome: StepOutcome; duration_ms: number; message?: string }
  | { type: "output"; step: string; stream: "stdout" | "stderr"; text: string }
  | { type: "warning"; step: string; message: string; hint?: string }
  | { type: "result"; shed: Shed }
  | { type: "error"; error: ErrorBody["error"] };

export type ProgressSink = (event: ProgressEvent) => void;

/**
 * Output as it travels inside the server: the guest's bytes, untouched. Hooks
 * can print hundreds of megabytes; decoding them to text is left to the one
 * place that needs text (a client that asked for JSON events), and the CLI's
 * lines are marked on the bytes (core/output-lines.ts).
 */
export interface OutputBytes {
  type: "output_bytes";
  step: string;
  stream: "stdout" | "stderr";
  bytes: Buffer;
}

/** What lifecycle code emits: progress events, with output as bytes. */
export type LifecycleEvent = Exclude<ProgressEvent, { type: "output" }> | OutputBytes;
export type LifecycleSink = (event: LifecycleEvent) => void;

/** A non-fatal failure inside a step: said as a warning, with a hint for the fix. */
export type Warn = (message: string, hint?: string) => void;
