import { ShedError } from "./errors.js";
import { quote } from "./quote.js";
import { redactUrl } from "./redact.js";

/**
 * Credentials for a repository's HTTP(S) remote. They never travel in a URL
 * that git sees: the shed gets them through git's credential store, fed on
 * stdin (src/guest/git-credentials.ts), because every URL git is given ends up
 * on some process's command line (git clone, git-remote-https).
 */
export interface RepoCredentials {
  username: string;
  password: string;
}

/** A remote as git will see it: `url` has no credentials. */
export interface RepoRemote {
  url: string;
  credentials?: RepoCredentials;
}

/** The schemes whose credentials git can take from a credential helper (git's curl transports). */
const HELPER_SCHEMES = new Set(["http", "https"]);

/** Git's own split (credential.c): the authority ends at the first of "/?#"; the userinfo ends at its first "@". */
const URL_RE = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([\s\S]*)$/i;

/** Credentials still inside a URL after the split (e.g. nested as `helper::https://user:token@host`). */
const NESTED_CREDENTIALS_RE = /[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]*:[^/?#@\s]*@/i;

/** A URL in an error: credentials hidden, and cut to ~100 characters (it is the client's input). */
function shownUrl(url: string): string {
  const shown = redactUrl(url);
  return shown.length <= 100 ? shown : quote(shown);
}

export function isHttpRepoUrl(url: string): boolean {
  const m = URL_RE.exec(url);
  return m?.[1] !== undefined && HELPER_SCHEMES.has(m[1].toLowerCase());
}

/**
 * Splits a repository URL into the URL git is given and the credentials it
 * carried (percent-decoded), or those given on their own (`explicit`, from
 * the API's repo_credentials). http(s) credentials move to the credential
 * store. A password in any other URL (ssh://user:pass@...) is dropped: git
 * never uses it (ssh authenticates with keys) and it would sit on git's
 * command line; a user name alone (ssh://git@host/...) is kept as it is.
 */
export function repoRemote(url: string, explicit?: RepoCredentials): RepoRemote {
  const m = URL_RE.exec(url);
  const scheme = m?.[1]?.toLowerCase();
  const authority = m?.[2] ?? "";
  const at = authority.indexOf("@");
  let remote: RepoRemote;
  if (!m || scheme === undefined || !HELPER_SCHEMES.has(scheme)) {
    if (explicit) {
      throw new ShedError(
        "INVALID_REQUEST",
        `repository credentials apply only to http(s) URLs, not ${shownUrl(url)}`,
        {
          hint: "ssh remotes authenticate with keys (server config: credentials); leave SHED_REPO_TOKEN unset for them",
        },
      );
    }
    const colon = authority.indexOf(":");
    const hasPassword = m !== null && at >= 0 && colon >= 0 && colon < at;
    remote = { url: hasPassword ? `${m[1]}://${authority.slice(0, colon)}${authority.slice(at)}${m[3]}` : url };
  } else if (at < 0) {
    remote = { url, ...(explicit ? { credentials: checked(explicit) } : {}) };
  } else {
    if (explicit) {
      throw new ShedError(
        "INVALID_REQUEST",
        `${shownUrl(url)} carries credentials, and repo_credentials were given too`,
        {
          hint: "give the token either in the URL or through SHED_REPO_TOKEN (repo_credentials), not both",
        },
      );
    }
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(":");
    // A user name alone is usually the token itself (https://TOKEN@github.com/...): it is kept secret the same way.
    const credentials = checked({
      username: decode(colon < 0 ? userinfo : userinfo.slice(0, colon), url),
      password: colon < 0 ? "" : decode(userinfo.slice(colon + 1), url),
    });
    remote = { url: `${m[1]}://${authority.slice(at + 1)}${m[3]}`, credentials };
  }
  if (NESTED_CREDENTIALS_RE.test(remote.url)) {
    throw new ShedError("INVALID_REQUEST", `${shownUrl(url)} has credentials where Shed cannot take them out`, {
      hint: "give a plain https:// URL and the token through SHED_REPO_TOKEN",
    });
  }
  return remote;
}

/** How a remote is shown to people: the URL, with `***@` where credentials are used. */
export function displayRemote(remote: RepoRemote): string {
  if (!remote.credentials) return redactUrl(remote.url);
  return remote.url.replace(/^([a-z][a-z0-9+.-]*:\/\/)/i, "$1***@");
}

/** The strings to scrub from output: the password (or the user name, when it is the token), raw and encoded. */
export function credentialSecrets(c: RepoCredentials | undefined): string[] {
  if (!c) return [];
  const secret = c.password === "" ? c.username : c.password;
  return [...new Set([secret, encodeURIComponent(secret)])].filter((s) => s.length >= 4);
}

function decode(part: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ShedError("INVALID_REQUEST", `the credentials in ${shownUrl(url)} have a malformed %-escape`, {
      hint: "percent-encode special characters of the user name and token (e.g. @ as %40, / as %2F)",
    });
  }
}

/** git's credential protocol is one `key=value` per line: a line break or NUL in a value would forge another key. */
function checked(c: RepoCredentials): RepoCredentials {
  if (/[\r\n\0]/.test(c.username) || /[\r\n\0]/.test(c.password)) {
    throw new ShedError("INVALID_REQUEST", "the repository's user name or token contains a line break or NUL", {
      hint: "git's credential store cannot hold such a value; check the token",
    });
  }
  return c;
}
