/**
 * Docs that compile: every TypeScript block in README.md type-checks on its own with `--strict`,
 * against the library's sources, with a small shared prelude of the names the prose assumes.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "node_modules", ".cache", "readme-snippets");

/** Names the README's snippets use without declaring: what an app already has. */
const PRELUDE = `
declare const tokens: import("grpc-web-auth").TokenSource;
declare const client: import("@connectrpc/connect").Client<
  typeof import("${ROOT}gen/demo/v1/demo_pb.js").DemoService
>;
declare const signInForm: { credentials(): { username: string; password: string } | undefined };
declare const adminForm: { credentials(): { username: string; password: string } | undefined };
declare const pkceSignIn: { refreshToken: string };
declare function showSignIn(reason: string): void;
`;

/** The ```ts blocks of a Markdown text, with the line each starts on. */
function typeScriptBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const pattern = /^```ts\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(pattern)) {
    const line = markdown.slice(0, match.index).split("\n").length;
    blocks.push({ line, code: match[1] as string });
  }
  return blocks;
}

describe("README.md", () => {
  const blocks = typeScriptBlocks(readFileSync(join(ROOT, "README.md"), "utf8"));

  it("has TypeScript blocks to check", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
  });

  it("has TypeScript blocks that each type-check with --strict", () => {
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, "prelude.d.ts"), PRELUDE);
    const files = blocks.map(({ line, code }) => {
      const file = join(OUT, `readme-line-${line}.ts`);
      // `export {}`: each block is a module of its own, whose names may shadow the prelude's.
      writeFileSync(file, `${code}\nexport {};\n`);
      return file;
    });
    const program = ts.createProgram([join(OUT, "prelude.d.ts"), ...files], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts"],
      types: [],
      baseUrl: ROOT,
      paths: {
        "grpc-web-auth": ["src/index.ts"],
        "grpc-web-auth/grpc-web": ["src/grpc-web.ts"],
      },
      allowImportingTsExtensions: false,
    });
    const errors = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
      const where = diagnostic.file
        ? `${diagnostic.file.fileName.replace(OUT, "README")}:${
            diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1
          }`
        : "";
      return `${where} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}`;
    });
    expect(errors).toEqual([]);
  }, 60_000);
});
