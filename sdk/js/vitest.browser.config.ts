import { defineConfig } from "vitest/config";

// Browser tests: Debian's Chromium driven by playwright-core against a running backend
// (started by test/browser/setup.ts), with the shop on another origin than the API.
export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    environment: "node",
    globalSetup: ["test/browser/setup.ts"],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 90_000,
  },
});
