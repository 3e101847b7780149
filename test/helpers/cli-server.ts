import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll } from "vitest";
import { type CliUser, newCliUser, REPO_ROOT } from "./cli.js";
import { startTestServer, type TestServer } from "./server.js";

/**
 * For the CLI's black-box tests: a test server and a CLI user with it added
 * as `dev` (the default), for a whole file (helpers/cleanup.ts removes it all
 * after the file's tests).
 */
export function useCliServer(
  got: (server: TestServer, user: CliUser) => void,
  extra: Record<string, unknown> = {},
): void {
  beforeAll(async () => {
    for (const built of ["shed.cjs", "shed-server.mjs"]) {
      if (!existsSync(join(REPO_ROOT, "dist", built))) throw new Error("dist/ is missing: run `npm run build` first");
    }
    const server = await startTestServer(extra);
    const user = newCliUser();
    await addServerAs(user, server, "dev");
    got(server, user);
  });
}

/** `shed server add` of a test server, its token given on stdin as a user would pipe `shed-server token`. */
export async function addServerAs(user: CliUser, server: TestServer, name: string): Promise<void> {
  const res = await user.run(
    ["server", "add", "127.0.0.1", "--port", String(server.httpPort), "--name", name, "--token-file", "-"],
    { input: `${server.token}\n` },
  );
  if (res.code !== 0) throw new Error(`shed server add failed (exit ${res.code}):\n${res.stderr}`);
}
