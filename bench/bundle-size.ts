/**
 * What an app's bundle grows by, per way of using the library, and two auth-refresh libraries
 * beside it. Each usage is a small app in bench/apps/ importing from `src/`, so tree-shaking (with
 * the package's `"sideEffects": false`, which esbuild reads for `src/` from the root package.json)
 * decides what ends up in it, as it would in an app.
 */
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The peers: every Connect app has them already. Everything else (ky included) is bundled. */
export const PEERS = ["@connectrpc/connect", "@bufbuild/protobuf"];

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
  /** The minified bytes each file contributes, largest first (esbuild's metafile); none of 0. */
  files: { path: string; minBytes: number }[];
  /** Every file the output's metafile lists as its input, those that contribute 0 bytes too. */
  bundled: string[];
}

/** Usage (a): the app's own `fetchToken` and the Connect interceptor. The size goal is on it. */
export const FETCH_TOKEN_APP: BundleSpec = {
  name: "(a) createTokenSource({ fetchToken }) + createAuthInterceptor",
  entry: "bench/apps/a-fetch-token.ts",
  external: PEERS,
};

/** Usage (b): `passwordGrant` (refresh-token support included) and the Connect interceptor. */
export const PASSWORD_GRANT_APP: BundleSpec = {
  name: "(b) passwordGrant + createAuthInterceptor",
  entry: "bench/apps/b-password-grant.ts",
  external: PEERS,
};

/** Usage (e): usage (b) with `dpopProofs()`; (e) − (b) is what DPoP adds. */
export const DPOP_APP: BundleSpec = {
  name: "(e) passwordGrant + dpopProofs + createAuthInterceptor",
  entry: "bench/apps/e-password-grant-dpop.ts",
  external: PEERS,
};

/** The ways of using the library. */
export const USAGE_BUNDLES: readonly BundleSpec[] = [
  FETCH_TOKEN_APP,
  PASSWORD_GRANT_APP,
  {
    name: "(c) passwordGrant + shareAcrossTabs + createAuthInterceptor",
    entry: "bench/apps/c-share-across-tabs.ts",
    external: PEERS,
  },
  {
    name: "(d) grpc-web-auth/grpc-web with a fetchToken source",
    entry: "bench/apps/d-grpc-web.ts",
    // The grpc-web runtime is the app's, like the peers.
    external: [...PEERS, "grpc-web"],
  },
  DPOP_APP,
  {
    name: "(f) refreshTokenGrant + createAuthInterceptor",
    entry: "bench/apps/f-refresh-token-grant.ts",
    external: PEERS,
  },
  {
    name: "(g) authorizationCodeGrant + createAuthInterceptor",
    entry: "bench/apps/g-authorization-code-grant.ts",
    external: PEERS,
  },
];

/** Everything measured, in the order printed. */
export const BUNDLES: readonly BundleSpec[] = [
  ...USAGE_BUNDLES,
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
    bundled: Object.keys(output.inputs),
  };
}

/** Usage (a)'s bundle. */
export function measureFetchTokenApp(): Promise<BundleSize> {
  return measureBundle(FETCH_TOKEN_APP);
}

/** Every bundle in {@link BUNDLES}. */
export async function measureAllBundles(): Promise<BundleSize[]> {
  const sizes: BundleSize[] = [];
  for (const spec of BUNDLES) sizes.push(await measureBundle(spec));
  return sizes;
}
