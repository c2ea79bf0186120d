import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The demo SPA and the Playwright harness. Both bundle the library from `src/`, as an app would get
 * it. `VITE_API_URL` (default `http://127.0.0.1:8787`) points the pages at the backend.
 */
export default defineConfig({
  root,
  // Relative asset URLs: the build works from any path.
  base: "./",
  server: {
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    // The pages import src/ and gen/ from the repository root.
    fs: { allow: [repoRoot] },
  },
  preview: { host: "127.0.0.1", strictPort: true },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    rolldownOptions: {
      input: {
        index: fileURLToPath(new URL("index.html", import.meta.url)),
        harness: fileURLToPath(new URL("harness.html", import.meta.url)),
      },
    },
  },
});
