import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/helpers/cleanup.ts"],
    // Integration files share one Docker engine and two cores: one file at a time keeps them deterministic.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
