import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file starts its own lobbyd and redis-server processes.
    fileParallelism: false,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
