/** Which build of grpc-web-auth the benchmarks call. */
import { readFile } from "node:fs/promises";
import type * as Source from "../src/index.js";

/** What the benchmarks call. */
export type Library = Pick<
  typeof Source,
  "createAuthInterceptor" | "createTokenSource" | "dpopProofs" | "passwordGrant"
>;

const ROOT = new URL("../", import.meta.url);

/**
 * The package as npm ships it: the file its `exports` map gives apps for `grpc-web-auth`, compiled
 * by tsc into `dist/`. `npm run bench` times this, not `src/`: tsx compiles TypeScript with
 * esbuild's `keepNames`, which wraps every function the interceptor creates per call in a
 * `__name()` call that no app runs. On the in-memory benchmark that alone added about 0.015 to
 * the unary ratio.
 */
export async function loadPackage(): Promise<Library> {
  const manifest = JSON.parse(await readFile(new URL("package.json", ROOT), "utf8")) as {
    exports: { ".": { import: string } };
  };
  const entry = new URL(manifest.exports["."].import, ROOT);
  try {
    return (await import(entry.href)) as Library;
  } catch (error) {
    throw new Error(
      `${entry.pathname} did not load: run \`npm run build\` (\`npm run bench\` does)`,
      { cause: error },
    );
  }
}
