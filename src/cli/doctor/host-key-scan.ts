import { spawn } from "node:child_process";
import { findOnPath } from "../../core/find-on-path.js";

/**
 * The SSH host key a server presents on its SSH port, read with OpenSSH's ssh-keyscan (what `ssh`
 * itself will be shown), as `TYPE BASE64`. Undefined result: ssh-keyscan is not installed;
 * `key: undefined`: nothing answered with a key of that type.
 */
export async function scanHostKey(
  host: string,
  port: number,
  pinned: string,
): Promise<{ key: string | undefined } | undefined> {
  const keyscan = findOnPath("ssh-keyscan");
  if (!keyscan) return undefined;
  const type = keyscanType(pinned.split(" ")[0] ?? "");
  const argv = ["-T", "10", "-p", String(port), ...(type ? ["-t", type] : []), "--", host];
  const out = await new Promise<string>((resolve) => {
    const child = spawn(keyscan, argv, { stdio: ["ignore", "pipe", "ignore"] });
    let text = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      text += d;
    });
    child.on("error", () => resolve(""));
    child.on("close", () => resolve(text));
  });
  for (const line of out.split("\n")) {
    if (line.startsWith("#")) continue;
    // `[host]:port TYPE BASE64` (or `host TYPE BASE64` on port 22).
    const [, keyType, blob] = line.trim().split(/\s+/);
    if (keyType && blob) return { key: `${keyType} ${blob}` };
  }
  return { key: undefined };
}

/** ssh-keyscan's -t name for a key type as written in known_hosts. */
function keyscanType(keyType: string): string | undefined {
  if (keyType === "ssh-ed25519") return "ed25519";
  if (keyType === "ssh-rsa") return "rsa";
  if (keyType.startsWith("ecdsa-sha2-")) return "ecdsa";
  return undefined;
}
