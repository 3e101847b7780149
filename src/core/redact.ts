/**
 * Secrets never reach logs, events or errors. Repository URLs may carry
 * credentials (https://user:token@host/...); everything that prints or stores a
 * URL goes through redactUrl, and free text that may contain one (git's stderr)
 * through redactText.
 */
const URL_CREDENTIALS_RE = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s]+)@/gi;

export function redactUrl(url: string): string {
  return url.replace(URL_CREDENTIALS_RE, "$1***@");
}

export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = redactUrl(text);
  for (const s of secrets) {
    if (s.length >= 4) out = out.split(s).join("***");
  }
  return out;
}

/** The user:password part of a URL, so callers can also scrub it from output that mangles the URL. */
export function urlSecrets(url: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/@\s]+)@/i.exec(url);
  if (!m?.[1]) return [];
  const userinfo = m[1];
  const parts = [userinfo, ...userinfo.split(":")].filter((p) => p.length >= 4);
  return [...new Set(parts.map((p) => decodeURIComponentSafe(p))), ...parts];
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
