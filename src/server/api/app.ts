import { Readable } from "node:stream";
import { Hono } from "hono";
import { ShedError } from "../../core/errors.js";
import { quote, shown } from "../../core/quote.js";
import type { ShedService } from "../../lifecycle/shed-service.js";
import {
  createShedRequestSchema,
  provisionRequestSchema,
  registerKeyRequestSchema,
  type ServerInfo,
} from "../../protocol/api-types.js";
import { requestGuard } from "../auth/request-guard.js";
import { versionGuard } from "../auth/version-guard.js";
import type { AuthorizedKeys } from "../authorized-keys.js";
import type { BundleStore } from "../bundles.js";
import type { ImageService } from "../images/image-service.js";
import { registerImageRoutes } from "./image-routes.js";
import { errorResponse, runOperation } from "./respond.js";

export interface ApiDeps {
  service: ShedService;
  bundles: BundleStore;
  keys: AuthorizedKeys;
  info: () => ServerInfo;
  /** The API token every request but GET /api/info must carry. */
  token: string;
  /** `shed image`: absent, the server has no /api/images routes. */
  images?: ImageService;
}

/** The HTTP JSON API. Handlers only parse input and call the service. */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();
  const { service } = deps;

  app.onError((err, c) => errorResponse(c, err));
  // Before every route: a refused request never reaches a handler, so it changes nothing.
  app.use("*", versionGuard(deps.info().name));
  app.use("*", requestGuard(deps.token));
  app.notFound((c) =>
    errorResponse(
      c,
      new ShedError("INVALID_REQUEST", `no route ${c.req.method} ${shown(new URL(c.req.url).pathname)}`),
    ),
  );

  app.get("/api/info", (c) => c.json(deps.info()));

  app.get("/api/sheds", async (c) => c.json({ sheds: await service.list() }));

  app.post("/api/sheds", async (c) => {
    const req = createShedRequestSchema.safeParse(await readJson(c.req.raw));
    if (!req.success) throw invalidBody(req.error.issues);
    const bundle = req.data.repo_bundle;
    return runOperation(
      c,
      async (emit) => {
        try {
          return await service.create(req.data, emit);
        } finally {
          if (bundle) deps.bundles.remove(bundle);
        }
      },
      (shed) => ({ type: "result", shed }),
      201,
    );
  });

  app.get("/api/sheds/:name", async (c) => c.json(await service.get(c.req.param("name"))));

  app.delete("/api/sheds/:name", (c) => {
    const keep = c.req.query("keep_volume");
    if (keep !== undefined && keep !== "true" && keep !== "false") {
      throw new ShedError("INVALID_REQUEST", `keep_volume must be true or false, got ${quote(keep)}`);
    }
    return runOperation(
      c,
      (emit) => service.delete(c.req.param("name"), { keepVolume: keep === "true" }, emit),
      () => undefined,
    );
  });

  app.post("/api/sheds/:name/start", (c) =>
    runOperation(
      c,
      (emit) => service.start(c.req.param("name"), emit),
      (shed) => ({ type: "result", shed }),
    ),
  );
  app.post("/api/sheds/:name/stop", (c) =>
    runOperation(
      c,
      (emit) => service.stop(c.req.param("name"), emit),
      (shed) => ({ type: "result", shed }),
    ),
  );

  app.post("/api/sheds/:name/provision", async (c) => {
    const text = await c.req.text();
    const req = provisionRequestSchema.safeParse(text.trim() === "" ? {} : parseJson(text));
    if (!req.success) throw invalidBody(req.error.issues);
    return runOperation(
      c,
      (emit) => service.provision(c.req.param("name"), req.data.hook, emit),
      (shed) => ({ type: "result", shed }),
    );
  });

  app.put("/api/bundles", async (c) => {
    const body = c.req.raw.body;
    if (!body) throw new ShedError("INVALID_REQUEST", "the bundle upload has no body");
    const length = c.req.header("content-length");
    const id = await deps.bundles.put(
      Readable.fromWeb(body as import("node:stream/web").ReadableStream),
      length === undefined ? undefined : Number(length),
    );
    return c.json({ id }, 201);
  });

  if (deps.images) registerImageRoutes(app, { images: deps.images, bundles: deps.bundles, parse: readJson });

  app.post("/api/keys", async (c) => {
    const req = registerKeyRequestSchema.safeParse(await readJson(c.req.raw));
    if (!req.success) throw invalidBody(req.error.issues);
    const added = deps.keys.add(req.data.public_key);
    return c.json({ added }, added ? 201 : 200);
  });

  return app;
}

async function readJson(req: Request): Promise<unknown> {
  return parseJson(await req.text());
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ShedError("INVALID_REQUEST", `the request body is not JSON: ${(err as Error).message}`, {
      hint: "send a JSON object with Content-Type: application/json",
    });
  }
}

/** Problems (and unknown fields) spelled out in one error; the rest are counted, so the message stays short. */
const SHOWN = 5;

function invalidBody(
  issues: readonly { path: readonly PropertyKey[]; message: string; code: string; keys?: string[] }[],
): ShedError {
  const parts = issues.slice(0, SHOWN).map((i) => {
    const path = i.path.map(String).join(".");
    if (i.code === "unrecognized_keys" && i.keys) {
      const more = i.keys.length > SHOWN ? ` and ${i.keys.length - SHOWN} more` : "";
      return `unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.slice(0, SHOWN).map(fieldName).join(", ")}${more}`;
    }
    return `${path || "body"}: ${i.message}`;
  });
  if (issues.length > SHOWN) parts.push(`${issues.length - SHOWN} more problems`);
  return new ShedError("INVALID_REQUEST", `invalid request body: ${parts.join("; ")}`);
}

/** A field name the client sent: as it is when it looks like one, else quoted and cut (it is arbitrary input). */
function fieldName(key: string): string {
  return /^[A-Za-z0-9_.-]{1,40}$/.test(key) ? key : quote(key, 40);
}
