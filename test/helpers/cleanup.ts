import { afterAll } from "vitest";
import { removeTempDirs } from "./cli.js";

/** Every test file (vitest setupFiles): its temp dirs, test servers' data dirs included, go when it is over. */
afterAll(() => {
  removeTempDirs();
});
