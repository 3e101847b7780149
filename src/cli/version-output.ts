import { VERSION } from "../core/version.js";

/** What `shed version` prints (from boot.ts, which answers it without loading the CLI, and from main.ts). */
export function versionOutput(json: boolean): string {
  return json ? `${JSON.stringify({ version: VERSION })}\n` : `shed ${VERSION}\n`;
}
