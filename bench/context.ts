// What every part of the benchmark is given: the run's id and scratch directory, its server, the CLI.
import { type BenchServer, must, type Run, SHED } from "./harness.js";

export interface Ctx {
  /** Labels (dev.shed.bench=<runId>) and names everything this run makes outside Shed. */
  runId: string;
  /** Scratch directory of this run: repos and devcontainer workspace folders. */
  tmp: string;
  quick: boolean;
  server: BenchServer;
  line(s: string): void;
}

/** The packaged CLI against one server; output kept only when asked for. */
export const shedOn =
  (server: BenchServer) =>
  (args: string[], quiet = true): Promise<Run> =>
    must([SHED, ...args], { env: server.env, quiet });
