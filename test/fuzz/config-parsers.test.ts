/**
 * Fuzzing the four YAML files Shed reads (provision.yaml, the server config, the client
 * config, sync.yaml) through their real parsers.
 *
 * Budget: about 60 s for 4 × 10,000 cases (measured 60 s on the 2-core machine while other
 * tests ran; ~1.5 ms a case, mostly YAML parsing). SHED_FUZZ_RUNS raises the count for longer
 * local runs; SHED_FUZZ_SEED (and SHED_FUZZ_PATH) replay a failure fast-check printed.
 *
 * Properties: a parser never throws anything but its documented result (provision.yaml:
 * problems, never an exception; the others: a ShedError INVALID_CONFIG listing problems),
 * every problem is placed at file:line:col, no message echoes more than ~100 characters of
 * the file, and what is accepted keeps the parser's own invariants.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClientConfig } from "../../src/cli/client-config.js";
import { describeProblems, HOOK_NAMES, parseProvision } from "../../src/config/provision-file.js";
import { loadServerConfig } from "../../src/config/server-config.js";
import { loadSyncFile } from "../../src/config/sync-file.js";
import type { ConfigProblem } from "../../src/config/yaml-source.js";
import { ShedError } from "../../src/core/errors.js";
import { removeAtEnd } from "../helpers/cli.js";
import { anyString, configText, echoes, FUZZ_RUNS, fuzzParams, maybe } from "./arbitraries.js";

const dir = removeAtEnd(mkdtempSync(join(tmpdir(), "shed-fuzz-config-")));

/** A single parse taking this long on a file of at most a few tens of KB is a hang (e.g. exponential blowup). */
const HANG_MS = 5_000;

function timed<T>(text: string, fn: () => T): T {
  const started = performance.now();
  let failed: unknown;
  let result: T | undefined;
  try {
    result = fn();
  } catch (err) {
    failed = err;
  }
  const took = performance.now() - started;
  if (took > HANG_MS)
    throw new Error(`parsing took ${Math.round(took)} ms: a hang on ${JSON.stringify(text.slice(0, 200))}`);
  if (failed !== undefined) throw failed;
  return result as T;
}

function checkProblem(p: ConfigProblem, file: string, text: string): void {
  expect(p.file).toBe(file);
  expect(Number.isInteger(p.line) && p.line >= 1, `line ${p.line}`).toBe(true);
  expect(Number.isInteger(p.col) && p.col >= 1, `col ${p.col}`).toBe(true);
  expect(typeof p.path).toBe("string");
  expect(typeof p.message).toBe("string");
  expect(p.message.length).toBeGreaterThan(0);
  expect(echoes(p.message, text), `message echoes the file: ${p.message.slice(0, 300)}`).toBe(false);
}

/** The loaders' one failure: INVALID_CONFIG whose message lists each problem as file:line:col. */
function checkConfigError(err: unknown, file: string, text: string): void {
  if (!(err instanceof ShedError)) throw err;
  expect(err.code).toBe("INVALID_CONFIG");
  const problems = (err.details?.problems ?? []) as ConfigProblem[];
  expect(problems.length).toBeGreaterThan(0);
  for (const p of problems) {
    checkProblem(p, file, text);
    expect(err.message).toContain(`${file}:${p.line}:${p.col}: `);
  }
  expect(echoes(err.message, text), `error echoes the file: ${err.message.slice(0, 300)}`).toBe(false);
}

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/**
 * Texts that found bugs, replayed first in every run of each parser (all four share yaml-source.ts).
 */
const REGRESSIONS: [string][] = [
  // An alias to no anchor inside a merge key: yaml's toJS() threw a ReferenceError out of every loader.
  ["<<: *a"],
  // The same throw for an alias bomb (more aliases than yaml allows): now a problem at the first alias.
  [
    [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
    ].join("\n"),
  ],
  // A wrong-typed value was echoed whole in "(got ...)".
  [`profiles: "(${" ".repeat(200)}\\\n  "\n`],
  [`servers: ${"a".repeat(130)}\n`],
  // yaml's syntax message quotes the offending source, up to the rest of the file.
  [`\n\n  " ": null\n- false\n$${" ".repeat(200)}\n\n    /abs\n`],
  // default_server and --server were looked up with servers[name]: "constructor" found Object's constructor
  // as a server entry (now own keys only, and the default_server problem is placed at file:line:col).
  ["default_server: constructor\n"],
  // sync.yaml: a profile's unknown feature was echoed whole, and every feature name listed.
  [`profiles:\n  git:\n    features:\n      - git${" ".repeat(120)}$\n`],
  // An unknown key's path (the key itself) was echoed whole in the formatted problem.
  [`? \n ${"a".repeat(130)}`],
  // yaml's "Not a YAML token: ..." was cut at 140 characters, which still echoed 110 of the file's.
  [`|&a ${"a".repeat(109)}\n`],
];

const hookPathish = fc.oneof(fc.constantFrom("x.sh", "scripts/a.sh", "../x", "/abs", "..tools/x", "./.."), anyString);
const envName = fc.oneof(fc.constantFrom("A", "MY_VAR", "_x", "1BAD", "bad-name", ""), fc.string());
const duration = fc.oneof(fc.constantFrom("90s", "30m", "1.5h", "250ms", "600h", "0s", "s", "1d"), fc.string());

const nearProvision = fc.record(
  {
    hooks: maybe(
      fc.record(
        { install: maybe(hookPathish), startup: maybe(hookPathish), shutdown: maybe(hookPathish), extra: anyString },
        { requiredKeys: [] },
      ),
    ),
    env: maybe(fc.dictionary(envName, maybe(fc.oneof(fc.string(), fc.integer(), fc.boolean())), { maxKeys: 5 })),
    timeout: maybe(duration),
    colour: anyString,
  },
  { requiredKeys: [] },
);

const port = fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.double());
const pathish = fc.oneof(fc.constantFrom("~", "~/x", "/abs", "rel/dir", "", "../up"), fc.string());
const nearServer = fc.record(
  {
    name: maybe(fc.string()),
    http_port: maybe(port),
    ssh_port: maybe(port),
    bind: maybe(fc.constantFrom("127.0.0.1", "0.0.0.0", "::1", "")),
    enabled_backends: maybe(fc.array(fc.constantFrom("docker", "firecracker", "vz", "nope"))),
    default_backend: maybe(fc.constantFrom("docker", "firecracker", "vz", "nope")),
    default_image: maybe(fc.string()),
    data_dir: maybe(pathish),
    stop_timeout: maybe(duration),
    credentials: maybe(
      fc.dictionary(
        fc.oneof(fc.constantFrom("gh", ".", "..", "a b"), fc.string()),
        maybe(
          fc.record(
            {
              source: maybe(pathish),
              target: maybe(pathish),
              readonly: maybe(fc.boolean()),
              exclude: maybe(fc.array(fc.string())),
            },
            { requiredKeys: [] },
          ),
        ),
        { maxKeys: 3 },
      ),
    ),
    env_file: maybe(pathish),
    ssh_authorized_keys: maybe(pathish),
    local_dir_roots: maybe(fc.array(pathish)),
    tls_cert: maybe(pathish),
    tls_key: maybe(pathish),
    insecure_http: maybe(fc.boolean()),
  },
  { requiredKeys: [] },
);

const nearClient = fc.record(
  {
    default_server: maybe(fc.constantFrom("local", "x", "constructor", "__proto__", "toString")),
    servers: maybe(
      fc.dictionary(
        fc.oneof(fc.constantFrom("local", "x", "-bad", "constructor"), fc.string()),
        maybe(
          fc.record(
            {
              host: maybe(fc.string()),
              http_port: maybe(port),
              ssh_port: maybe(port),
              host_key: maybe(fc.constantFrom("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "bad key")),
              token: maybe(fc.constantFrom("a".repeat(32), "short")),
              tls_fingerprint: maybe(fc.constantFrom(`sha256:${"ab".repeat(32)}`, "md5:x")),
              local: maybe(fc.boolean()),
            },
            { requiredKeys: [] },
          ),
        ),
        { maxKeys: 3 },
      ),
    ),
  },
  { requiredKeys: [] },
);

const syncName = fc.oneof(fc.constantFrom("git", "gh", "default", "-x", "a b"), fc.string());
const nearSync = fc.record(
  {
    features: maybe(
      fc.dictionary(
        syncName,
        maybe(
          fc.record(
            {
              description: maybe(fc.string()),
              paths: maybe(
                fc.array(
                  maybe(
                    fc.record(
                      { source: maybe(pathish), target: maybe(pathish), include: maybe(fc.array(fc.string())) },
                      { requiredKeys: [] },
                    ),
                  ),
                  { maxLength: 3 },
                ),
              ),
              postSync: maybe(fc.array(maybe(fc.record({ run: maybe(fc.string()) })), { maxLength: 2 })),
            },
            { requiredKeys: [] },
          ),
        ),
        { maxKeys: 3 },
      ),
    ),
    profiles: maybe(fc.dictionary(syncName, maybe(fc.record({ features: maybe(fc.array(syncName)) })), { maxKeys: 3 })),
  },
  { requiredKeys: [] },
);

/** Room for the run's count on a loaded machine (~1.5 ms a case). */
const TIMEOUT = 60_000 + FUZZ_RUNS * 10;

describe("fuzzing the config parsers", () => {
  it(
    "provision.yaml: never throws; every problem is placed; what is kept is safe",
    () => {
      fc.assert(
        fc.property(configText(nearProvision), (text) => {
          const { config, problems } = timed(text, () => parseProvision(text, "provision.yaml"));
          for (const p of problems) checkProblem(p, "provision.yaml", text);
          for (const line of describeProblems(problems)) expect(echoes(line, text), line.slice(0, 300)).toBe(false);
          for (const [hook, path] of Object.entries(config.hooks)) {
            expect(HOOK_NAMES).toContain(hook);
            const normal = posix.normalize(path);
            expect(path.startsWith("/") || normal === ".." || normal.startsWith("../"), path).toBe(false);
          }
          for (const [k, v] of Object.entries(config.env)) {
            expect(k).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
            expect(typeof v).toBe("string");
          }
          expect(Number.isFinite(config.timeoutMs) && config.timeoutMs >= 0).toBe(true);
        }),
        fuzzParams<[string]>(REGRESSIONS),
      );
    },
    TIMEOUT,
  );

  it(
    "server config: loads, or fails with INVALID_CONFIG placing each problem",
    () => {
      fc.assert(
        fc.property(configText(nearServer), (text) => {
          const file = writeConfig("server.yaml", text);
          try {
            const cfg = timed(text, () => loadServerConfig(file));
            expect(cfg.enabledBackends).toContain(cfg.defaultBackend);
            expect(cfg.httpPort >= 0 && cfg.httpPort <= 65535).toBe(true);
            expect(cfg.dataDir.startsWith("/")).toBe(true);
          } catch (err) {
            checkConfigError(err, file, text);
          }
        }),
        fuzzParams<[string]>(REGRESSIONS),
      );
    },
    TIMEOUT,
  );

  it(
    "client config: loads, or fails with INVALID_CONFIG placing each problem",
    () => {
      fc.assert(
        fc.property(configText(nearClient), (text) => {
          const file = writeConfig("config.yaml", text);
          try {
            const cfg = timed(text, () => ClientConfig.load(file));
            // What the CLI does next with it: pick the server a command talks to.
            for (const name of [undefined, "local", "constructor", "toString"]) {
              try {
                const picked = cfg.pick(name);
                if (picked) expect(typeof picked.entry.host, `picked ${picked.name}`).toBe("string");
              } catch (err) {
                if (!(err instanceof ShedError)) throw err;
                expect(err.code).toBe("SERVER_NOT_FOUND");
              }
            }
          } catch (err) {
            checkConfigError(err, file, text);
          }
        }),
        fuzzParams<[string]>(REGRESSIONS),
      );
    },
    TIMEOUT,
  );

  it(
    "sync.yaml: loads, or fails with INVALID_CONFIG placing each problem",
    () => {
      fc.assert(
        fc.property(configText(nearSync), (text) => {
          const file = writeConfig("sync.yaml", text);
          try {
            const sync = timed(text, () => loadSyncFile(file));
            for (const p of Object.values(sync.data.profiles)) {
              for (const f of p.features) expect(Object.hasOwn(sync.data.features, f)).toBe(true);
            }
          } catch (err) {
            checkConfigError(err, file, text);
          }
        }),
        fuzzParams<[string]>(REGRESSIONS),
      );
    },
    TIMEOUT,
  );
});
