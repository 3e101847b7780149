import type { ServerResponse } from "node:http";
import type { MiddlewareHandler } from "hono";
import { ShedError } from "../../core/errors.js";
import { quote } from "../../core/quote.js";
import {
  formatVersionHeader,
  OWN_VERSION,
  parseVersionHeader,
  VERSION_HEADER,
  versionMismatch,
} from "../../protocol/api-version.js";

/**
 * Every answer says which release and API version this server is (the CLI
 * checks it), and a request from a CLI that says it is incompatible is refused
 * before any handler runs, so it changes nothing. A request without the header
 * (curl, a script, a CLI from before version checks) is served.
 */
export function versionGuard(serverName: string): MiddlewareHandler {
  const header = formatVersionHeader();
  return async (c, next) => {
    c.header(VERSION_HEADER, header);
    // Streamed operations write their head on the Node response directly, past Hono's headers.
    (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing?.setHeader(VERSION_HEADER, header);
    const sent = c.req.header(VERSION_HEADER);
    if (sent !== undefined) {
      const cli = parseVersionHeader(sent);
      if (!cli) {
        throw new ShedError("INVALID_REQUEST", `the ${VERSION_HEADER} header ${quote(sent)} is malformed`, {
          hint: `send "${VERSION_HEADER}: RELEASE; api=N; min-api=N", or no such header`,
        });
      }
      const mismatch = versionMismatch(cli, OWN_VERSION, `shed-server ${serverName}`);
      if (mismatch) throw mismatch;
    }
    await next();
  };
}
