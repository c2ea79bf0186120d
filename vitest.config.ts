import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/browser/**", "node_modules/**"],
    // Real loopback servers and timers: give slow CI machines room, never flake.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
