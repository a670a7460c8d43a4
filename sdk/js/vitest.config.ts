import { defineConfig } from "vitest/config";

// Unit tests: the widget's modules in happy-dom, with fetch stubbed per test.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    environment: "happy-dom",
    environmentOptions: { happyDOM: { url: "https://shop.example/" } },
    restoreMocks: true,
    unstubGlobals: true,
  },
});
