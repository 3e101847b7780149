import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // After every file, helpers/cleanup.ts removes what it made; "stack" runs a file's own afterAll hooks first.
    setupFiles: ["test/helpers/cleanup.ts"],
    sequence: { hooks: "stack" },
    // Integration files share one Docker engine and two cores: one file at a time keeps them deterministic.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
