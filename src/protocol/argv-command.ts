/**
 * `shed exec NAME -- ARGV...` travels over SSH without a shell string: the CLI
 * sends the exec command `shed-exec:<base64 of the NUL-terminated args>`, and
 * the server decodes the exact argv, so no argument is ever re-parsed by a
 * shell. It is one request: an env request before the exec would cost a
 * delayed-ACK round trip (tens of milliseconds) on every command.
 */
export const ARGV_PREFIX = "shed-exec:";

export function encodeArgvCommand(argv: readonly string[]): string {
  return `${ARGV_PREFIX}${Buffer.from(argv.map((a) => `${a}\0`).join(""), "utf8").toString("base64")}`;
}

export function isArgvCommand(command: string): boolean {
  return command.startsWith(ARGV_PREFIX);
}

/** The argv of a `shed-exec:` command; undefined when it is malformed. */
export function decodeArgvCommand(command: string): string[] | undefined {
  const encoded = command.slice(ARGV_PREFIX.length);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return undefined;
  const text = Buffer.from(encoded, "base64").toString("utf8");
  if (!text.endsWith("\0")) return undefined;
  const argv = text.slice(0, -1).split("\0");
  return argv.length > 0 && argv[0] !== "" ? argv : undefined;
}
