import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const page = (name: string) => fileURLToPath(new URL(`demo/web/${name}`, import.meta.url));

/**
 * The demo SPA and the Playwright harness, whose pages stay in `demo/web/`: `npm start` serves
 * them, `npm run build:demo` builds them into `demo/web/dist/`, and the browser tests preview that
 * build. Both bundle the library from `src/`, as an app would get it. `VITE_API_URL` (default
 * `http://127.0.0.1:8787`) points the pages at the backend.
 */
export default defineConfig({
  root: page(""),
  // Relative asset URLs: the build works from any path.
  base: "./",
  server: {
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    // The pages import src/ and gen/ from the repository root.
    fs: { allow: [fileURLToPath(new URL(".", import.meta.url))] },
  },
  preview: { host: "127.0.0.1", strictPort: true },
  build: {
    outDir: page("dist"),
    emptyOutDir: true,
    sourcemap: true,
    rolldownOptions: {
      input: {
        index: page("index.html"),
        harness: page("harness.html"),
        react: page("react.html"),
        "oidc-client-ts": page("oidc-client-ts.html"),
        "sign-in": page("sign-in.html"),
      },
    },
  },
});
