import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The library as an app gets it: compiled as published, installed under node_modules, imported by
// package name and subpath (through package.json "exports"), and bundled by Vite.

const repo = fileURLToPath(new URL("../..", import.meta.url));
/** What an app's install brings beside the library: its dependencies, and the peers it has. */
const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const PEERS = [...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)];
let app: string;
let bundles: { main: string; grpcWeb: string };

function viteBuild(entry: string, outDir: string) {
  return build({
    root: app,
    logLevel: "silent",
    configFile: false,
    build: {
      outDir,
      emptyOutDir: true,
      minify: false,
      // A library-style output keeps the entry's exports, so the test can call them.
      lib: { entry: join(app, entry), formats: ["es"], fileName: "bundle" },
    },
  });
}

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), "grpc-web-auth-consumer-"));
  const installed = join(app, "node_modules", "grpc-web-auth");
  mkdirSync(installed, { recursive: true });
  execFileSync(
    process.execPath,
    [
      join(repo, "node_modules/typescript/bin/tsc"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      join(installed, "dist"),
    ],
    { cwd: repo, stdio: "pipe" },
  );
  copyFileSync(join(repo, "package.json"), join(installed, "package.json"));
  for (const peer of PEERS) {
    const link = join(app, "node_modules", peer);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(repo, "node_modules", peer), link, "dir");
  }
  writeFileSync(
    join(app, "main-app.js"),
    `export { createTokenSource, createAuthInterceptor, passwordGrant, shareAcrossTabs, skipAuth, TokenFetchError } from "grpc-web-auth";\n`,
  );
  writeFileSync(
    join(app, "grpc-web-app.js"),
    `export { createTokenSource } from "grpc-web-auth";\nexport { createGrpcWebInterceptors } from "grpc-web-auth/grpc-web";\n`,
  );
  await viteBuild("main-app.js", "dist-main");
  await viteBuild("grpc-web-app.js", "dist-grpc-web");
  bundles = {
    main: readFileSync(join(app, "dist-main", "bundle.mjs"), "utf8"),
    grpcWeb: readFileSync(join(app, "dist-grpc-web", "bundle.mjs"), "utf8"),
  };
}, 120_000);

afterAll(() => {
  if (app !== undefined && !process.env.KEEP) rmSync(app, { recursive: true, force: true });
});

describe("the published package in a Vite-built app", () => {
  it("bundles grpc-web-auth/grpc-web through the exports map, and it works", async () => {
    const { createTokenSource, createGrpcWebInterceptors } = await import(
      pathToFileURL(join(app, "dist-grpc-web", "bundle.mjs")).href
    );
    const tokens = createTokenSource({ fetchToken: async () => "token" });
    const interceptors = createGrpcWebInterceptors(tokens);
    expect(interceptors.unaryInterceptors).toHaveLength(1);
    expect(interceptors.streamInterceptors).toHaveLength(1);
    expect(await tokens.getToken()).toBe("token");
  });

  it("bundles the main entry, and it works", async () => {
    const {
      createTokenSource,
      createAuthInterceptor,
      passwordGrant,
      shareAcrossTabs,
      TokenFetchError,
    } = await import(pathToFileURL(join(app, "dist-main", "bundle.mjs")).href);
    const tokens = createTokenSource({ fetchToken: async () => "token" });
    expect(typeof createAuthInterceptor(tokens)).toBe("function");
    expect(new TokenFetchError("x", { code: 14 }).code).toBe(14);
    // The grant and the tab sharing an app names are in its bundle, with their option checks.
    const withGrant = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: "http://127.0.0.1:9/auth/token",
        credentials: { username: "alice", password: "pw" },
      }),
      crossTab: shareAcrossTabs("consumer-test"),
    });
    expect(withGrant.peek()).toBeUndefined();
    expect(() => passwordGrant({ endpoint: "/auth/token", credentials: () => undefined })).toThrow(
      /^passwordGrant: endpoint/,
    );
    expect(() => createTokenSource({ fetchToken: async () => "t", crossTab: true })).toThrow(
      TypeError,
    );
  });

  it("leaves grpc-web and the grpc-web adapter out of an app that does not import them", () => {
    // grpc-web's runtime sends this header; the adapter names its factory in its option checks.
    expect(bundles.grpcWeb).toContain("X-Grpc-Web");
    expect(bundles.grpcWeb).toContain('"createGrpcWebInterceptors"');
    expect(bundles.main).not.toContain("X-Grpc-Web");
    expect(bundles.main).not.toContain('"createGrpcWebInterceptors"');
  });
});
