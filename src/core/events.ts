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
