/**
 * Fuzzing the HTTP API's request bodies through a real shed-server (in this process, on
 * the real Docker engine): POST /api/sheds, POST /api/sheds/:name/provision, POST
 * /api/keys, DELETE /api/sheds/:name?keep_volume=...
 *
 * Budget: about 2 minutes for 4 × 10,000 requests plus three real creates (measured 120 s on
 * the 2-core machine while other tests ran: one keep-alive connection, ~3 ms a request; the
 * ones that reach the service ask Docker about the name). SHED_FUZZ_RUNS changes the count;
 * SHED_FUZZ_SEED (and SHED_FUZZ_PATH) replay a failure fast-check printed.
 *
 * Nothing gets made: a body that would be accepted names the one shed made before (create:
 * 409, provision: 409 as it is stopped); deletes name a shed that does not exist. A handful
 * of real creates from the same generators cover the accepted path.
 *
 * Properties: every request is answered (a per-request deadline catches a hang) with an
 * error that is never INTERNAL/5xx, names the field or the body, and never echoes more
 * than ~100 characters of what was sent; the server is alive and holds one shed at the end.
 */
import http from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isErrorCode } from "../../src/core/errors.js";
import { generateEd25519KeyPair } from "../../src/core/ssh-keygen.js";
import { RUN_PREFIX, uniqueName } from "../helpers/names.js";
import { createLocal, op, workspace } from "../helpers/provision.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { anyString, anyValue, echoes, FUZZ_RUNS, fuzzParams, longStrings, maybe } from "./arbitraries.js";

/** The one shed this file makes before fuzzing: stopped, so an accepted provision body is refused with 409. */
const EXISTING = uniqueName("fz-exists");
/** A valid name no shed has: deletes use it (404), so a delete that is accepted removes nothing. */
const ABSENT = `${RUN_PREFIX}-fz-absent`;
/** An answer later than this is a hang (a request takes milliseconds). */
const REQUEST_DEADLINE_MS = 20_000;
const MAX_JSON_BODY = 1024 * 1024;
const MAX_MESSAGE = 2_000;

/** An OpenSSH public key registered before fuzzing: sending it again is accepted (200) and adds nothing. */
const REGISTERED_KEY = `${generateEd25519KeyPair().publicKey} fuzz@test`;

let server: TestServer;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

interface Sent {
  method: string;
  path: string;
  body?: string | Buffer;
  /** undefined: no Content-Type header. */
  contentType?: string | undefined;
  /** Long strings in what was sent: no error may echo them. */
  strings: string[];
}

interface Answer {
  status: number;
  json: any;
  text: string;
}

function send(req: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: `Bearer ${server.token}` };
    if (req.contentType !== undefined) headers["content-type"] = req.contentType;
    if (req.body !== undefined) headers["content-length"] = Buffer.byteLength(req.body);
    const r = http.request(
      { host: "127.0.0.1", port: server.httpPort, method: req.method, path: req.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
        res.on("error", reject);
      },
    );
    r.setTimeout(REQUEST_DEADLINE_MS, () =>
      r.destroy(new Error(`no answer within ${REQUEST_DEADLINE_MS} ms: the server hangs on this request`)),
    );
    r.on("error", reject);
    r.end(req.body);
  });
}

const NAME_RE = /^(?:[a-z]|[a-z][a-z0-9-]*[a-z0-9])$/;
/** A name the server would make a shed for: fuzzing never sends one (it becomes EXISTING instead). */
const isNewName = (v: unknown) => typeof v === "string" && v.length <= 63 && NAME_RE.test(v) && v !== EXISTING;

/** What a body may not do: name a shed that does not exist yet (it would be made). */
function withoutNewName(value: unknown): unknown {
  if (value && typeof value === "object" && !Array.isArray(value) && isNewName((value as { name?: unknown }).name)) {
    return { ...value, name: EXISTING };
  }
  return value;
}

/** Content types other than JSON's, and JSON's spelled the ways that are still JSON. */
const contentType = fc.oneof(
  fc.constantFrom(
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "application/jsonx",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "",
  ),
  fc.constant(undefined),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 }),
);

function jsonBody(value: fc.Arbitrary<unknown>): fc.Arbitrary<Omit<Sent, "method" | "path">> {
  return value.map((v) => {
    const safe = withoutNewName(v);
    return { body: JSON.stringify(safe) ?? "null", contentType: "application/json", strings: longStrings(safe) };
  });
}

/** Text that parses to an object naming a new shed gets EXISTING's name instead. */
function textBody(text: string): Omit<Sent, "method" | "path"> {
  try {
    const parsed = JSON.parse(text);
    if (withoutNewName(parsed) !== parsed) return { ...jsonBodyOf(withoutNewName(parsed)) };
  } catch {
    // not JSON: sent as it is
  }
  return { body: text, contentType: "application/json", strings: text.length > 120 ? [text] : [] };
}

function jsonBodyOf(v: unknown): Omit<Sent, "method" | "path"> {
  return { body: JSON.stringify(v) ?? "null", contentType: "application/json", strings: longStrings(v) };
}

/**
 * Bodies for one route: near-valid records (the route's real fields, random values), any JSON,
 * any text, invalid UTF-8, wrong content types, deep nesting, and bodies at and over 1 MiB.
 */
function bodies(nearValid: fc.Arbitrary<unknown>): fc.Arbitrary<Omit<Sent, "method" | "path">> {
  return fc.oneof(
    { weight: 6, arbitrary: jsonBody(nearValid) },
    { weight: 3, arbitrary: jsonBody(fc.jsonValue({ maxDepth: 4 })) },
    {
      weight: 2,
      arbitrary: jsonBody(
        fc
          .tuple(nearValid, fc.dictionary(anyString, anyValue, { minKeys: 1, maxKeys: 3 }))
          .map(([near, extra]) => (near && typeof near === "object" ? { ...extra, ...near } : near)),
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 50, max: 2_000 })
        .map((n) =>
          jsonBodyOf({ name: EXISTING, ...Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])) }),
        ),
    },
    { weight: 3, arbitrary: anyString.map(textBody) },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => ({
        body: Buffer.from(b),
        contentType: "application/json",
        strings: [],
      })),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(jsonBody(nearValid), contentType).map(([b, type]) => ({
        ...b,
        contentType: type,
        strings: [...b.strings, ...(type && type.length > 120 ? [type] : [])],
      })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 1_000, max: 50_000 }), fc.boolean())
        .map(([n, wrapped]) =>
          textBody(wrapped ? `{"name":${"[".repeat(n)}${"]".repeat(n)}}` : `${"[".repeat(n)}${"]".repeat(n)}`),
        ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(MAX_JSON_BODY - 100, MAX_JSON_BODY + 1), fc.constantFrom("name", "x", "image"))
        .map(([size, field]) => jsonBodyOf(withoutNewName({ name: EXISTING, [field]: "n".repeat(size) }))),
    },
  );
}

/** Names for the URL: the existing shed, an absent one, and anything else (never another valid name that exists). */
const pathName = fc.oneof(
  { weight: 2, arbitrary: fc.constant(ABSENT) },
  { weight: 2, arbitrary: anyString.filter((s) => s !== EXISTING) },
  { weight: 1, arbitrary: fc.constantFrom("", "Bad", "a-", "x".repeat(64), "..", "%", "a/b", "a?b", "a#b") },
);

/** Lone surrogates as U+FFFD (encodeURIComponent refuses them; a client sends what it can encode). */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/** A path segment as a client would send it (percent-encoded; lone surrogates become U+FFFD). */
function segment(name: string): string {
  return encodeURIComponent(wellFormed(name));
}

/** Over 100 characters: what an error must cut, not echo (after a prefix that gets it past the first checks). */
const long = (...prefixes: string[]) =>
  fc
    .tuple(fc.constantFrom(...prefixes), fc.string({ unit: "grapheme", minLength: 101, maxLength: 2000 }))
    .map(([p, rest]) => p + rest);

const durationish = fc.oneof(
  fc.constantFrom("90s", "30m", "1.5h", "250ms", "600h", "0s", "s", "7d", "8d"),
  anyString,
  long("", "9", "1".repeat(200)).map((s) => `${s}s`),
);
const urlish = fc.oneof(
  fc.constantFrom(
    "https://example.invalid/r.git",
    "https://user:secret@example.invalid/r.git",
    "ssh://git@example.invalid/r.git",
    "git@example.invalid:r.git",
    "file:///etc",
    "",
  ),
  anyString,
  anyString.map((s) => `https://${s}@example.invalid/${s}`),
  long("https://", "https://u:p@", "ssh://", "git@", "", "file://"),
);
const pathish = fc.oneof(
  fc.constantFrom("/", "/tmp", "/etc", "/nonexistent", "rel/dir", "~", "/proc/self"),
  anyString,
  long("/", "/tmp/", "/etc/", "", "/proc/"),
  fc.integer({ min: 40, max: 2000 }).map((n) => `/etc/${"../".repeat(n)}`),
);
const imageish = fc.oneof(fc.constantFrom("shed-base:latest", "nope:nope", "UPPER", ""), anyString, long("", "x:"));

const nameForCreate = fc.oneof(
  { weight: 6, arbitrary: fc.constant(EXISTING) },
  { weight: 1, arbitrary: fc.constantFrom("", "Bad", "a-", "x".repeat(64), "a_b") },
  { weight: 1, arbitrary: anyValue },
);

/**
 * Create bodies: every field at once (mostly refused by the schema), and small groups of fields that
 * pass it more often, so the service's own checks (local_dir, repo URLs, bundles, backends) are reached.
 */
const nearCreate = fc.oneof(
  fc.record(
    {
      name: nameForCreate,
      repo: maybe(urlish),
      repo_bundle: maybe(fc.oneof(fc.constant("0".repeat(32)), fc.stringMatching(/^[a-f0-9]{32}$/))),
      repo_label: maybe(fc.oneof(anyString, long(""))),
      repo_origin: maybe(urlish),
      repo_credentials: maybe(
        fc.record({ username: maybe(anyString), password: maybe(anyString) }, { requiredKeys: [] }),
      ),
      local_dir: maybe(pathish),
      image: maybe(imageish),
      backend: maybe(fc.constantFrom("docker", "firecracker", "vz", "kvm")),
      no_provision: maybe(fc.boolean()),
      timeout: maybe(durationish),
      constructor: anyValue,
      colour: anyValue,
    },
    { requiredKeys: [] },
  ),
  fc.record({ name: nameForCreate, local_dir: pathish }),
  fc.record({ name: nameForCreate, repo: urlish }),
  fc.record(
    {
      name: nameForCreate,
      repo: urlish,
      repo_credentials: fc.record({ username: fc.oneof(anyString, long("")), password: anyString }),
    },
    { requiredKeys: ["name", "repo_credentials"] },
  ),
  fc.record(
    {
      name: nameForCreate,
      repo_bundle: fc.oneof(fc.constant("0".repeat(32)), fc.stringMatching(/^[a-f0-9]{32}$/)),
      repo_origin: urlish,
      repo_label: fc.oneof(anyString, long("")),
    },
    { requiredKeys: ["name", "repo_bundle"] },
  ),
  fc.record(
    {
      name: nameForCreate,
      image: imageish,
      backend: fc.constantFrom("docker", "firecracker", "vz", "kvm"),
      timeout: durationish,
      no_provision: fc.boolean(),
    },
    { requiredKeys: ["name"] },
  ),
);

const nearProvision = fc.record(
  { hook: maybe(fc.constantFrom("install", "startup", "shutdown", "Install", "all")), extra: anyValue },
  { requiredKeys: [] },
);

const keyish = fc.oneof(
  fc.constant(REGISTERED_KEY),
  fc.constant(`command="x",no-pty ${REGISTERED_KEY}`),
  fc.constant(`${REGISTERED_KEY}\nssh-rsa AAAA second line`),
  fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 3 })).map(([at, s]) => {
    const i = at % REGISTERED_KEY.length;
    return REGISTERED_KEY.slice(0, i) + s + REGISTERED_KEY.slice(i + 1);
  }),
  fc.constantFrom(
    "ssh-rsa AAAA",
    "ssh-ed25519",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "",
  ),
  anyString,
);
const nearKey = fc.record({ public_key: maybe(keyish), comment: anyValue }, { requiredKeys: [] });

const LONG_KEY = `${" ".repeat(119)}\u{10000}`;
const LONG_NAME = "a".repeat(300);

/** Requests that found bugs, replayed first in every run (fast-check's `examples`). */
const REGRESSIONS = {
  create: [
    // Every unknown field was listed: 2,000 of them made a 20 KB error message.
    [
      jsonRequest("/api/sheds", {
        name: EXISTING,
        ...Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i])),
      }),
    ],

    // local_dir was echoed whole (message and details) when refused, not found or relative.
    [withStrings(jsonRequest("/api/sheds", { name: EXISTING, local_dir: `/etc/${"../".repeat(100)}` }))],
    [withStrings(jsonRequest("/api/sheds", { name: EXISTING, local_dir: `/${"y".repeat(300)}` }))],
    [withStrings(jsonRequest("/api/sheds", { name: EXISTING, local_dir: "x".repeat(300) }))],
    // A repository URL was echoed whole in the credentials errors.
    [
      withStrings(
        jsonRequest("/api/sheds", {
          name: EXISTING,
          repo: `file://${" ".repeat(300)}`,
          repo_credentials: { username: "u", password: "p" },
        }),
      ),
    ],
  ],
  keys: [
    // An unknown field's name was echoed whole.
    [jsonRequest("/api/keys", { [LONG_KEY]: 0, "": "" })],
  ],
  provision: [
    // A path that matches no route was echoed whole in "no route POST ...".
    [{ ...jsonRequest(`/api/${LONG_NAME}`, {}), strings: [LONG_NAME] }],
  ],
  delete: [
    // The 415 answer echoed the whole path.
    [{ method: "DELETE", path: `/api/sheds/${LONG_NAME}`, body: "x", contentType: "text/plain", strings: [LONG_NAME] }],
  ],
} satisfies Record<string, [Sent][]>;

/** The request with every string over 100 characters as one not to echo (longStrings' floor is 120). */
function withStrings(req: Sent): Sent {
  return { ...req, strings: longStrings(JSON.parse(String(req.body)), 100) };
}

function jsonRequest(path: string, value: unknown): Sent {
  return { method: "POST", path, ...jsonBodyOf(value) };
}

/** What every answer must be: an error a person can act on, or (only where `accepted` allows it) success. */
function checkAnswer(req: Sent, res: Answer, accepted: number[]): void {
  const where = `${req.method} ${req.path.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 400)}`;
  if (accepted.includes(res.status)) return;
  // Node's HTTP parser refuses a request line and headers over 16 KB before Shed sees it (a long URL).
  if (res.status === 431 && req.path.length > 8_000) return;
  expect(res.status >= 400 && res.status < 500, where).toBe(true);
  const error = res.json?.error;
  expect(isErrorCode(error?.code), where).toBe(true);
  expect(error.code, where).not.toBe("INTERNAL");
  expect(typeof error.message === "string" && error.message.length > 0, where).toBe(true);
  // A message is for a person: bounded whatever was sent (thousands of unknown fields are not listed).
  expect(error.message.length, where).toBeLessThan(MAX_MESSAGE);
  for (const shown of [error.message, error.hint ?? "", JSON.stringify(error.details ?? {})]) {
    for (const s of req.strings) expect(echoes(shown, s), `echoes ${s.length} characters: ${where}`).toBe(false);
  }
  if (error.code === "INVALID_REQUEST") expect(error.message, where).toMatch(FIELD_OR_BODY);
}

/** An INVALID_REQUEST says what was wrong: a field (or the query parameter, or the URL), or the body as a whole. */
const FIELD_OR_BODY =
  /\b(body|JSON|name|repo|repository|credentials|repo_bundle|repo_label|repo_origin|repo_credentials|username|password|local_dir|image|backend|no_provision|timeout|hook|public_key|keep_volume|field|fields|--repo|--local-dir|route)\b/;

function route(
  method: string,
  path: fc.Arbitrary<string>,
  body: fc.Arbitrary<Omit<Sent, "method" | "path">>,
): fc.Arbitrary<Sent> {
  return fc.tuple(path, body).map(([p, b]) => ({ method, path: p, ...b }));
}

describe("fuzzing the API's request bodies", () => {
  beforeAll(async () => {
    server = await startTestServer();
    await createLocal(server, EXISTING, workspace({}), { no_provision: true });
    await op(server, "POST", `/api/sheds/${EXISTING}/stop`);
    const added = await server.api("POST", "/api/keys", { public_key: REGISTERED_KEY });
    expect(added.status).toBe(201);
  });
  afterAll(() => agent.destroy());

  const property = (arb: fc.Arbitrary<Sent>, accepted: number[]) =>
    fc.asyncProperty(arb, async (req) => {
      checkAnswer(req, await send(req), accepted);
    });
  // The run's count plus room for a loaded machine: ~5 ms a request.
  const timeout = 60_000 + FUZZ_RUNS * 20;

  it(
    "POST /api/sheds: every body is refused with a clear error (409 for the existing name)",
    async () => {
      await fc.assert(
        property(route("POST", fc.constant("/api/sheds"), bodies(nearCreate)), []),
        fuzzParams<[Sent]>(REGRESSIONS.create),
      );
    },
    timeout,
  );

  it(
    "POST /api/sheds/:name/provision: refused, never run (the shed is stopped)",
    async () => {
      const path = fc.oneof(
        { weight: 6, arbitrary: fc.constant(`/api/sheds/${EXISTING}/provision`) },
        { weight: 2, arbitrary: pathName.map((n) => `/api/sheds/${segment(n)}/provision`) },
        // Mostly no route at all: the "no route" answer names the path.
        { weight: 1, arbitrary: pathName.map((n) => `/api/${segment(n)}`) },
      );
      const body = fc.oneof(
        { weight: 8, arbitrary: bodies(nearProvision) },
        {
          weight: 1,
          arbitrary: fc.constantFrom("", " ", "\n\t ").map((t) => ({ body: t, contentType: undefined, strings: [] })),
        },
      );
      await fc.assert(property(route("POST", path, body), []), fuzzParams<[Sent]>(REGRESSIONS.provision));
    },
    timeout,
  );

  it(
    "POST /api/keys: a key is added or already there; anything else is refused",
    async () => {
      await fc.assert(
        property(route("POST", fc.constant("/api/keys"), bodies(nearKey)), [200, 201]),
        fuzzParams<[Sent]>(REGRESSIONS.keys),
      );
    },
    timeout,
  );

  it(
    "DELETE /api/sheds/:name?keep_volume=...: refused, or not found (nothing is deleted)",
    async () => {
      const keep = fc.oneof(
        fc.constantFrom("true", "false", "", "1", "TRUE", "yes", "true&keep_volume=false"),
        anyString.map((s) => encodeURIComponent(wellFormed(s))),
      );
      const query = fc.oneof(
        fc.constant(""),
        keep.map((k) => `?keep_volume=${k}`),
        fc.tuple(keep, keep).map(([a, b]) => `?keep_volume=${a}&keep_volume=${b}`),
        anyString.map((s) => `?${encodeURIComponent(wellFormed(s))}`),
      );
      const arb = fc.tuple(pathName, query, fc.option(bodies(nearCreate), { freq: 5 })).map(([name, q, b]) => ({
        method: "DELETE",
        path: `/api/sheds/${segment(name)}${q}`,
        ...(b ?? {}),
        strings: [
          ...(b?.strings ?? []),
          ...(name.length > 120 ? [name] : []),
          ...(q.length > 120 ? [decodeURIComponent(q.slice(1))] : []),
        ],
      }));
      await fc.assert(property(arb, []), fuzzParams<[Sent]>(REGRESSIONS.delete));
    },
    timeout,
  );

  // Found by this fuzzing: after a 413 (or any answer that left the body unread) the server dropped the
  // connection without saying so, and the next request on that keep-alive connection got "socket hang up".
  it("a refused body closes its connection cleanly: the next keep-alive request is answered", async () => {
    const refused: Sent[] = [
      jsonRequest("/api/keys", { public_key: "n".repeat(3 * MAX_JSON_BODY) }),
      {
        method: "POST",
        path: "/api/keys",
        body: "x".repeat(3 * MAX_JSON_BODY),
        contentType: "text/plain",
        strings: [],
      },
      { method: "DELETE", path: `/api/sheds/${ABSENT}`, ...jsonBodyOf({ pad: "n".repeat(MAX_JSON_BODY - 100) }) },
    ];
    for (const req of refused) {
      const res = await send(req);
      expect([404, 413, 415]).toContain(res.status);
      const next = await send(jsonRequest("/api/keys", { public_key: REGISTERED_KEY }));
      expect(next.status, `after ${res.status}: ${next.text}`).toBe(200);
    }
  });

  it("a few real creates from the same generators are accepted, then deleted; nothing else was made", async () => {
    const valid = fc.record({
      no_provision: fc.boolean(),
      timeout: fc.constantFrom(undefined, "90s", "10m", "1.5h"),
      image: fc.constantFrom(undefined, "shed-base:latest"),
      repo_label: fc.constantFrom(undefined, "ignored without a bundle"),
    });
    for (const extra of fc.sample(valid, { numRuns: 3, seed: 9 })) {
      const name = uniqueName("fz-real");
      const body = Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined));
      const created = await server.api("POST", "/api/sheds", { name, local_dir: workspace({}), ...body });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.name).toBe(name);
      const deleted = await server.api("DELETE", `/api/sheds/${name}`);
      expect(deleted.status, JSON.stringify(deleted.body)).toBe(204);
    }
    const list = await server.api("GET", "/api/sheds");
    expect(list.body.sheds.map((s: { name: string }) => s.name)).toEqual([EXISTING]);
    expect(list.body.sheds[0].status).toBe("stopped");
  });
});
