import { readFileSync } from "node:fs";
import { ShedError } from "../core/errors.js";

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads a KEY=VALUE file (the server's env_file): blank lines and # comments
 * are skipped, a value may be wrapped in single or double quotes. A bad line is
 * an INVALID_CONFIG error naming file:line.
 */
export function readEnvFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ShedError("INVALID_CONFIG", `cannot read env_file ${file}: ${(err as Error).message}`, {
      hint: "fix env_file in the server config",
    });
  }
  const env: Record<string, string> = {};
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const body = line.startsWith("export ") ? line.slice(7).trimStart() : line;
    const eq = body.indexOf("=");
    const key = eq > 0 ? body.slice(0, eq).trim() : "";
    if (!NAME_RE.test(key)) {
      throw new ShedError(
        "INVALID_CONFIG",
        `${file}:${i + 1}: expected KEY=VALUE, got ${JSON.stringify(line.slice(0, 40))}`,
        {
          hint: "variable names use letters, digits and _, and do not start with a digit",
        },
      );
    }
    let value = body.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) {
      value = value.slice(1, -1);
    }
    env[key] = value;
  });
  return env;
}
