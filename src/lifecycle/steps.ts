import { ShedError, toShedError } from "../core/errors.js";
import type { LifecycleSink } from "../core/events.js";

/**
 * A lifecycle is an ordered list of steps (the rows of the seed's tables). Each
 * step says whether its failure is fatal; one runner executes them, reports
 * progress, turns non-fatal failures into warnings and, when a fatal step
 * fails, undoes what the earlier steps made, newest first.
 */
export interface StepIO {
  emit: LifecycleSink;
  /** Output of the step's guest commands, as it arrives (text, or the guest's bytes untouched). */
  output(stream: "stdout" | "stderr", data: string | Buffer): void;
  warn(message: string, hint?: string): void;
  /** Aborted when the operation's deadline passes; steps stop their guest processes. */
  signal: AbortSignal;
}

export type StepRun = { outcome: "skipped"; reason: string } | { outcome: "done"; message?: string } | undefined;

export interface Step<C> {
  id: string;
  title: string;
  fatal: boolean;
  run(ctx: C, io: StepIO): Promise<StepRun>;
  /** Undoes this step's effect after a fatal failure (its own or a later step's); must be idempotent. */
  undo?(ctx: C): Promise<void>;
}

export interface StepsResult {
  warnings: string[];
}

export class StepFailure extends Error {
  constructor(
    readonly step: string,
    readonly error: ShedError,
  ) {
    super(error.message);
  }
}

/**
 * Which operation runs the steps, and where the current step is recorded
 * before it runs, so that a server killed in it can say so at its next start.
 */
export interface StepTracking {
  op: string;
  onStep(step: string): void;
}

/**
 * Test-only fault injection (README: Recovery): `SHED_FAULT_KILL_AT=op:step`
 * (or `op:step:before`) SIGKILLs the server once the step is recorded and
 * before it runs; `op:step:after` once it has run, before the next is
 * recorded. Unset, nothing happens.
 */
export const FAULT_KILL_ENV = "SHED_FAULT_KILL_AT";

function faultKill(op: string, step: string, when: "before" | "after"): void {
  const at = process.env[FAULT_KILL_ENV];
  if (!at) return;
  if (at === `${op}:${step}:${when}` || (when === "before" && at === `${op}:${step}`)) {
    process.kill(process.pid, "SIGKILL");
  }
}

export async function runSteps<C>(
  steps: readonly Step<C>[],
  ctx: C,
  emit: LifecycleSink,
  deadline?: number,
  track?: StepTracking,
): Promise<StepsResult> {
  const warnings: string[] = [];
  const done: Step<C>[] = [];
  const controller = new AbortController();
  const timer =
    deadline === undefined
      ? undefined
      : setTimeout(() => controller.abort(new Error("deadline passed")), Math.max(0, deadline - Date.now()));
  try {
    for (const step of steps) {
      if (track) {
        track.onStep(step.id);
        faultKill(track.op, step.id, "before");
      }
      emit({ type: "step", step: step.id, title: step.title });
      const started = Date.now();
      let stepWarned = false;
      const io: StepIO = {
        emit,
        signal: controller.signal,
        output: (stream, data) =>
          emit({
            type: "output_bytes",
            step: step.id,
            stream,
            bytes: typeof data === "string" ? Buffer.from(data) : data,
          }),
        warn: (message, hint) => {
          stepWarned = true;
          warnings.push(`${step.id}: ${message}`);
          emit({ type: "warning", step: step.id, message, ...(hint ? { hint } : {}) });
        },
      };
      try {
        if (controller.signal.aborted) {
          throw new ShedError("TIMEOUT", "the operation's time limit (--timeout) passed before this step", {
            hint: "give create a longer --timeout",
          });
        }
        const result = await step.run(ctx, io);
        const duration_ms = Date.now() - started;
        if (result?.outcome === "skipped") {
          emit({ type: "step_end", step: step.id, outcome: "skipped", duration_ms, message: result.reason });
        } else {
          emit({
            type: "step_end",
            step: step.id,
            outcome: stepWarned ? "warning" : "succeeded",
            duration_ms,
            ...(result?.message ? { message: result.message } : {}),
          });
        }
        done.push(step);
        if (track) faultKill(track.op, step.id, "after");
      } catch (err) {
        const error = toShedError(err);
        const duration_ms = Date.now() - started;
        if (!step.fatal) {
          io.warn(error.message, error.hint);
          emit({ type: "step_end", step: step.id, outcome: "warning", duration_ms, message: error.message });
          done.push(step);
          if (track) faultKill(track.op, step.id, "after");
          continue;
        }
        emit({ type: "step_end", step: step.id, outcome: "failed", duration_ms, message: error.message });
        // The failed step may have made part of its work (a container that then would not start): undo it too.
        await undoAll([...done, step], ctx, emit);
        throw new StepFailure(step.id, error);
      }
    }
    return { warnings };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function undoAll<C>(done: Step<C>[], ctx: C, emit: LifecycleSink): Promise<void> {
  for (const step of [...done].reverse()) {
    if (!step.undo) continue;
    try {
      await step.undo(ctx);
    } catch (err) {
      emit({
        type: "warning",
        step: step.id,
        message: `could not undo ${step.id}: ${toShedError(err).message}`,
        hint: "remove what the message names by hand, with the backend's own tools",
      });
    }
  }
}
