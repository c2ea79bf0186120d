/** What an app's bundle grows by: the library's entries, and two auth-refresh libraries beside it. */
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Left out of our entries: the app has the peers already, and ky is measured on its own. */
export const LIBRARY_EXTERNALS = ["@connectrpc/connect", "@bufbuild/protobuf", "ky", "grpc-web"];

/** One bundle to measure. */
export interface BundleSpec {
  name: string;
  /** A file (relative to the repository root) or a package name. */
  entry: string;
  /** Left out of the bundle, as the app already has them. */
  external: string[];
}

/** Sizes of one bundle, in bytes. */
export interface BundleSize extends BundleSpec {
  /** Minified. */
  minBytes: number;
  /** Minified, then gzipped at level 9. */
  gzipBytes: number;
  /** The minified bytes each bundled file contributes, largest first (esbuild's metafile). */
  files: { path: string; minBytes: number }[];
}

/** The main entry, `grpc-web-auth`. */
export const MAIN_ENTRY: BundleSpec = {
  name: "grpc-web-auth",
  entry: "src/index.ts",
  external: LIBRARY_EXTERNALS,
};

/** Everything measured, in the order printed. */
export const BUNDLES: readonly BundleSpec[] = [
  MAIN_ENTRY,
  { name: "grpc-web-auth/grpc-web", entry: "src/grpc-web.ts", external: LIBRARY_EXTERNALS },
  // What the main entry adds when the app does not have ky yet.
  { name: "ky (our dependency)", entry: "ky", external: [] },
  { name: "axios-auth-refresh", entry: "axios-auth-refresh", external: ["axios"] },
  // wonka is a dependency of @urql/core: every urql app has it.
  { name: "@urql/exchange-auth", entry: "@urql/exchange-auth", external: ["@urql/core", "wonka"] },
];

/**
 * Bundles `spec` as an app's bundler would (esbuild `--bundle --minify --format=esm`, browser
 * platform) and weighs it. A package entry keeps every export, as an entry point does.
 */
export async function measureBundle(spec: BundleSpec): Promise<BundleSize> {
  const result = await build({
    entryPoints: [spec.entry],
    absWorkingDir: ROOT,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    external: spec.external,
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const code = result.outputFiles[0]?.contents;
  const output = Object.values(result.metafile.outputs)[0];
  if (code === undefined || output === undefined) {
    throw new Error(`esbuild wrote nothing for ${spec.entry}`);
  }
  const files = Object.entries(output.inputs)
    .map(([path, input]) => ({ path, minBytes: input.bytesInOutput }))
    .filter((file) => file.minBytes > 0)
    .sort((a, b) => b.minBytes - a.minBytes);
  return {
    ...spec,
    minBytes: code.byteLength,
    gzipBytes: gzipSync(code, { level: 9 }).byteLength,
    files,
  };
}

/** The main entry's size. */
export function measureMainEntry(): Promise<BundleSize> {
  return measureBundle(MAIN_ENTRY);
}

/** Every bundle in {@link BUNDLES}. */
export async function measureAllBundles(): Promise<BundleSize[]> {
  const sizes: BundleSize[] = [];
  for (const spec of BUNDLES) sizes.push(await measureBundle(spec));
  return sizes;
}
