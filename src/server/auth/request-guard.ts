import { timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ShedError } from "../../core/errors.js";
import { quote, shown } from "../../core/quote.js";

/** The one request that needs no token: it tells clients who the server is, and holds nothing secret. */
const PUBLIC = { method: "GET", path: "/api/info" };

/** Routes whose body is not JSON. */
const OCTET_STREAM_ROUTES = new Set(["/api/bundles"]);

/** A JSON request is small (a name, a URL, a few options): anything bigger is refused before it is read. */
export const MAX_JSON_BODY = 1024 * 1024;

/**
 * Every request passes here before any handler, so a refused one changes nothing:
 * 1. An `Origin` header means a web page sent it (browsers add it to cross-site
 *    requests): refused, whatever else it carries. No CORS headers are ever sent.
 * 2. Everything but GET /api/info needs `Authorization: Bearer <token>`. Loopback
 *    is not trusted: every local user can reach it.
 * 3. A body must declare what it is: JSON as application/json, bundles as
 *    application/octet-stream. Browsers can send text/plain across sites without
 *    asking first; this, with 1 and 2, closes that door. JSON is at most 1 MiB.
 */
export function requestGuard(token: string): MiddlewareHandler {
  const expected = Buffer.from(token);
  return async (c, next) => {
    // A refusal here leaves the body unread and the server drops the connection after answering: the answer
    // says so, or a keep-alive client sends its next request down that dead socket ("socket hang up").
    const refuse = (err: ShedError): never => {
      if (hasBody(c.req.raw)) c.header("Connection", "close");
      throw err;
    };
    if (c.req.header("origin") !== undefined) {
      refuse(
        new ShedError("ORIGIN_REFUSED", "requests from web pages are refused (the request has an Origin header)", {
          hint: "use the shed CLI, or a client that sends no Origin header",
        }),
      );
    }
    const path = new URL(c.req.url).pathname;
    if (!(c.req.method === PUBLIC.method && path === PUBLIC.path)) {
      if (!bearerMatches(c.req.header("authorization"), expected)) {
        c.header("WWW-Authenticate", 'Bearer realm="shed-server"');
        refuse(
          new ShedError("UNAUTHORIZED", "this request needs the server's API token", {
            hint: "on the server, `shed-server token` prints it; give it to `shed server add HOST --token-file -` (or $SHED_TOKEN)",
          }),
        );
      }
    }
    if (hasBody(c.req.raw)) {
      const want = OCTET_STREAM_ROUTES.has(path) ? "application/octet-stream" : "application/json";
      const got = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
      if (got !== want) {
        refuse(
          new ShedError(
            "UNSUPPORTED_MEDIA_TYPE",
            `${c.req.method} ${shown(path)} takes ${want}, not ${got === "" ? "a body without Content-Type" : quote(got)}`,
            { hint: `send the body with Content-Type: ${want}` },
          ),
        );
      }
      if (want === "application/json") await jsonLimit(c, next);
      else await next();
      // Answered without reading the body (DELETE, a route that does not exist): as in refuse().
      if (!c.req.raw.bodyUsed) c.header("Connection", "close");
      return;
    }
    await next();
  };
}

/** Counts chunked bodies as they arrive; a Content-Length over the limit is refused unread. */
const jsonLimit = bodyLimit({
  maxSize: MAX_JSON_BODY,
  onError: (c) => {
    // The rest of the body is never read and the connection is dropped after this answer (as in refuse() above).
    c.header("Connection", "close");
    throw new ShedError("PAYLOAD_TOO_LARGE", `a JSON request body is at most ${MAX_JSON_BODY} bytes (1 MiB)`, {
      hint: "API requests carry names and options; a repository goes through PUT /api/bundles",
    });
  },
});

function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer ([^\s]+)$/i.exec(header ?? "");
  if (!m?.[1]) return false;
  const given = Buffer.from(m[1]);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A request has a body when it says so: a length above zero, or chunked transfer. */
function hasBody(req: Request): boolean {
  const length = req.headers.get("content-length");
  if (length !== null) return length !== "0";
  return req.headers.get("transfer-encoding") !== null;
}
