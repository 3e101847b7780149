import { ShedError } from "../core/errors.js";
import type { ProgressEvent } from "../core/events.js";
import { validateShedName } from "../core/names.js";
import type { Shed } from "../core/types.js";
import { safeLine } from "./safe-text.js";
import { checkShape, type Shape } from "./shape-check.js";

/**
 * What a server sends is untrusted: a shed's name ends up in ~/.ssh/config
 * (`Host shed-NAME`, `User NAME`), in the argv of `ssh`, and on the terminal.
 * Every shed the CLI receives passes here first (api-client.ts), so a name
 * with a line break, a space or an escape sequence (a container someone
 * labelled by hand, a compromised or buggy server) never reaches any of them:
 * a list leaves such a shed out with a warning, and a single shed is an error.
 * Objects stay loose (unknown fields pass), so a newer server's additions do
 * not break an older CLI; what the CLI reads must have the right type.
 */

const hookShape: Shape = {
  object: {
    state: "string",
    exit_code: { optional: "number" },
    started_at: { optional: "string" },
    duration_ms: { optional: "number" },
    log: "string",
    script: { optional: "string" },
    message: { optional: "string" },
    tail: { optional: { array: "string" } },
  },
};

const shedShape: Shape = {
  object: {
    name: "string",
    backend: "string",
    status: "string",
    image: "string",
    created_at: "string",
    repo: { optional: "string" },
    local_dir: { optional: "string" },
    workspace: "string",
    resources: { record: "string" },
    warnings: { array: "string" },
    interrupted: {
      optional: { object: { operation: "string", step: "string", message: "string", hint: "string" } },
    },
    provision: {
      optional: {
        object: {
          file_found: "boolean",
          warnings: { array: "string" },
          env: { array: "string" },
          path_added: { array: "string" },
          hooks: { object: { install: hookShape, startup: hookShape, shutdown: hookShape } },
          source: { optional: "string" },
          forward_ports: { optional: { array: "string" } },
          user: { optional: "string" },
        },
      },
    },
  },
};

/** Why a shed from the server is refused; undefined when it is fine. */
function problemWith(value: unknown): string | undefined {
  const issue = checkShape(shedShape, value);
  if (issue) {
    const name = (value as { name?: unknown } | null)?.name;
    const which = typeof name === "string" ? `shed "${safeLine(name)}"` : "a shed";
    return `${which} is malformed (${safeLine(issue.path.join(".") || "the shed")}: ${safeLine(issue.message)})`;
  }
  const { name } = value as Shed;
  try {
    validateShedName(name);
  } catch {
    return `a shed has an invalid name "${safeLine(name)}"`;
  }
  return undefined;
}

function invalid(server: string, problem: string): ShedError {
  return new ShedError("INVALID_RESPONSE", `server ${server} sent ${problem}`, {
    hint: "shed names use lowercase letters, digits and '-'; a shed with any other name was not made by Shed (look at the server's containers, e.g. `docker ps -a --filter label=dev.shed.managed`)",
  });
}

/** One shed; `expected` is the name the CLI asked for. */
export function checkShed(server: string, value: unknown, expected?: string): Shed {
  const problem = problemWith(value);
  if (problem) throw invalid(server, problem);
  const shed = value as Shed;
  if (expected !== undefined && shed.name !== expected) {
    throw invalid(server, `shed "${safeLine(shed.name)}" when asked for ${expected}`);
  }
  return shed;
}

/** The sheds of a list that are fine; each one left out is reported through `warn`. */
export function checkShedList(server: string, value: unknown, warn: (message: string) => void): { sheds: Shed[] } {
  const sheds = (value as { sheds?: unknown } | null)?.sheds;
  if (!Array.isArray(sheds)) throw invalid(server, "a shed list without a list of sheds");
  return {
    ...(value as object),
    sheds: sheds.filter((s) => {
      const problem = problemWith(s);
      if (problem) warn(`server ${server}: left out ${problem}`);
      return problem === undefined;
    }),
  };
}

const warnOnStderr = (message: string) => process.stderr.write(`warning: ${message}\n`);

/**
 * The check for a JSON answer of the HTTP API, picked by its path: the shed
 * list and one shed are checked; anything else passes as it is.
 */
export function checkResponse(server: string, method: string, path: string, body: unknown): unknown {
  if (method !== "GET") return body;
  const pathname = path.split("?")[0] ?? path;
  if (pathname === "/api/sheds") return checkShedList(server, body, warnOnStderr);
  const one = /^\/api\/sheds\/([^/]+)$/.exec(pathname);
  if (one?.[1]) return checkShed(server, body, decodeURIComponent(one[1]));
  return body;
}

/** A lifecycle operation's event: its final shed is checked like any other. */
export function checkEvent(server: string, ev: ProgressEvent): ProgressEvent {
  if (ev.type === "result") return { ...ev, shed: checkShed(server, ev.shed) };
  return ev;
}
