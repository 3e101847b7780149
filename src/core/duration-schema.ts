import { z } from "zod";
import { durationProblem } from "./duration.js";

/**
 * A duration field of a config file or request body; the issue says whether it
 * is malformed or too long. Apart from duration.ts so that what only formats
 * durations (the CLI's output, on its quick path) does not load classic zod.
 */
export const durationString = z.string().superRefine((s, ctx) => {
  const problem = durationProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});
