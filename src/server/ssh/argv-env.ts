/**
 * `shed exec NAME -- ARGV...` travels over SSH without a shell string: the CLI
 * puts the argv, NUL-separated and base64-encoded, in the SSH environment
 * variable SHED_EXEC_ARGV and asks to exec the marker command "shed-exec". The
 * server decodes the exact argv, so no argument is ever re-parsed by a shell.
 */
export const ARGV_ENV = "SHED_EXEC_ARGV";
export const ARGV_MARKER = "shed-exec";

export function encodeArgv(argv: readonly string[]): string {
  return Buffer.from(argv.map((a) => `${a}\0`).join(""), "utf8").toString("base64");
}

export function decodeArgv(encoded: string): string[] | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return undefined;
  const text = Buffer.from(encoded, "base64").toString("utf8");
  if (!text.endsWith("\0")) return undefined;
  const argv = text.slice(0, -1).split("\0");
  return argv.length > 0 && argv[0] !== "" ? argv : undefined;
}
