import { afterAll } from "vitest";
import { closeAllMasters, removeTempDirs } from "./cli.js";
import { cleanupDocker } from "./docker.js";
import { closeTestServers } from "./server.js";

/**
 * After every test file (vitest setupFiles; its own afterAll hooks have run by
 * then): SSH masters closed first (a server's close() waits for open SSH
 * connections), then its test servers, the containers and volumes of this
 * run, and its temp dirs, test servers' data dirs included.
 */
afterAll(async () => {
  closeAllMasters();
  if (await closeTestServers()) await cleanupDocker();
  removeTempDirs();
});
