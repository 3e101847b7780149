import { ShedError } from "../core/errors.js";
import { VERSION } from "../core/version.js";

/**
 * Which CLI can talk to which shed-server. Releases are not compared by their
 * version string: each build speaks one API version (an integer, raised when
 * the HTTP API changes in a way an older peer would get wrong) and still
 * speaks every API version down to MIN_PEER_API_VERSION. A CLI and a server
 * can talk when each one's API version is at least the other's minimum, so an
 * older or newer peer works for as long as the newer side still supports it.
 *
 * Both sides send `Shed-Version: <release>; api=<n>; min-api=<n>` on every
 * request and answer, and both check: the server before it runs a request (an
 * incompatible CLI changes nothing), the CLI on every answer (a server from
 * before this check, or one that kept supporting a CLI the CLI's own rules
 * refuse).
 */
export const API_VERSION = 1;

/** The oldest API version of a peer this build still serves or uses. */
export const MIN_PEER_API_VERSION = 1;

export const VERSION_HEADER = "shed-version";

export interface PeerVersion {
  /** The release, e.g. 0.1.0 (only for people: compatibility is decided by the API versions). */
  version: string;
  api: number;
  minApi: number;
}

export const OWN_VERSION: PeerVersion = { version: VERSION, api: API_VERSION, minApi: MIN_PEER_API_VERSION };

/**
 * A peer that sends no Shed-Version header predates it: it speaks API 1, the
 * API of the first release, and accepts API 1.
 */
export const UNSTATED_VERSION: PeerVersion = {
  version: "unknown (a release from before version checks)",
  api: 1,
  minApi: 1,
};

export function formatVersionHeader(v: PeerVersion = OWN_VERSION): string {
  return `${v.version}; api=${v.api}; min-api=${v.minApi}`;
}

const HEADER_RE = /^([0-9A-Za-z][0-9A-Za-z.+~-]{0,63});\s*api=(\d{1,6});\s*min-api=(\d{1,6})$/;

/**
 * The peer's version from its header: UNSTATED_VERSION without one, undefined
 * when it is malformed. A header comes from the other side, so only a short,
 * printable release string is ever taken from it.
 */
export function parseVersionHeader(header: string | string[] | undefined): PeerVersion | undefined {
  if (header === undefined) return UNSTATED_VERSION;
  const m = HEADER_RE.exec((Array.isArray(header) ? header.join(",") : header).trim());
  if (!m?.[1] || !m[2] || !m[3]) return undefined;
  const api = Number(m[2]);
  const minApi = Number(m[3]);
  return minApi <= api ? { version: m[1], api, minApi } : undefined;
}

/** Which side must be upgraded for the two to talk; undefined when they can. */
export function whoMustUpgrade(cli: PeerVersion, server: PeerVersion): "cli" | "server" | undefined {
  if (cli.api < server.minApi) return "cli";
  if (server.api < cli.minApi) return "server";
  return undefined;
}

/**
 * The error for an incompatible pair, the same on both sides: both releases,
 * both API versions, and which program to upgrade. `server` names it as the
 * CLI knows it (`shed-server dev at http://...`) or as the server says itself.
 */
export function versionMismatch(cli: PeerVersion, server: PeerVersion, serverLabel: string): ShedError | undefined {
  const upgrade = whoMustUpgrade(cli, server);
  if (!upgrade) return undefined;
  const cliSays = `this shed CLI is ${cli.version} (API ${cli.api}, talks to servers with API ${cli.minApi} or later)`;
  const serverSays = `${serverLabel} runs shed ${server.version} (API ${server.api}, serves CLIs with API ${server.minApi} or later)`;
  const details = {
    cli_version: cli.version,
    cli_api: cli.api,
    server_version: server.version,
    server_api: server.api,
    upgrade,
  };
  if (upgrade === "cli") {
    return new ShedError("VERSION_MISMATCH", `the shed CLI is too old for the server: ${cliSays}; ${serverSays}`, {
      hint: `upgrade the shed CLI on this machine (to ${server.version}, the server's release)`,
      details,
    });
  }
  return new ShedError("VERSION_MISMATCH", `the server is too old for this shed CLI: ${serverSays}; ${cliSays}`, {
    hint: `upgrade shed-server (to ${cli.version}, this CLI's release), or use a shed CLI as old as the server`,
    details,
  });
}
