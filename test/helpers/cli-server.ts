import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { type CliUser, cliOk, closeAllMasters, newCliUser, REPO_ROOT, removeTempDirs } from "./cli.js";
import { cleanupDocker } from "./docker.js";
import { startTestServer, type TestServer } from "./server.js";

/** For the CLI's black-box tests: test servers, and a CLI user that has one added. */

const servers: TestServer[] = [];

/** A test server on free ports, closed when the file's tests are over. */
export async function newTestServer(extra: Record<string, unknown> = {}): Promise<TestServer> {
  const server = await startTestServer(extra);
  servers.push(server);
  return server;
}

/**
 * A test server and a CLI user with it added as `dev` (the default), for a
 * whole file; after its tests, SSH masters, servers, containers, volumes and
 * temp dirs are gone.
 */
export function useCliServer(got: (server: TestServer, user: CliUser) => void): void {
  beforeAll(async () => {
    for (const built of ["shed.cjs", "shed-server.mjs"]) {
      if (!existsSync(join(REPO_ROOT, "dist", built))) throw new Error("dist/ is missing: run `npm run build` first");
    }
    const server = await newTestServer();
    const user = newCliUser();
    await cliOk(user, ["server", "add", "127.0.0.1", "--port", String(server.httpPort), "--name", "dev"]);
    got(server, user);
  });
  afterAll(async () => {
    closeAllMasters();
    await Promise.all(servers.splice(0).map((s) => s.close().catch(() => {})));
    await cleanupDocker();
    removeTempDirs();
  });
}
