/**
 * The public surface is what the entry points export, and nothing else: every type the emitted
 * declarations of an exported name refer to must itself be exported from an entry point. An
 * internal type that leaks (a tab link, a DPoP key, a resolved-options record) fails here.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRIES = ["index.d.ts", "grpc-web.d.ts"];

/** Emits the declarations as `npm run build` would, into a temporary folder. */
function emitDeclarations(outDir: string): void {
  const configPath = join(ROOT, "tsconfig.build.json");
  const parsed = ts.getParsedCommandLineOfConfigFile(
    configPath,
    { outDir },
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
      },
    },
  );
  if (parsed === undefined) throw new Error("tsconfig.build.json did not parse");
  const program = ts.createProgram(parsed.fileNames, {
    ...parsed.options,
    outDir,
    emitDeclarationOnly: true,
    declaration: true,
  });
  const result = program.emit();
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, ts.createCompilerHost({})));
}

/**
 * The named types the public declarations refer to that no entry point exports, as
 * `Name (file)`, each once; `publicNames` gets every name the entries export.
 */
function leakedTypes(outDir: string, publicNames: Set<string>): string[] {
  const program = ts.createProgram(
    ENTRIES.map((entry) => join(outDir, entry)),
    {
      skipLibCheck: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
    },
  );
  const checker = program.getTypeChecker();
  const publicSymbols = new Set<ts.Symbol>();
  for (const entry of ENTRIES) {
    const file = program.getSourceFile(join(outDir, entry));
    const moduleSymbol = file && checker.getSymbolAtLocation(file);
    for (const exported of moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : []) {
      publicNames.add(exported.name);
      publicSymbols.add(resolveAlias(checker, exported));
    }
  }
  const leaks = new Set<string>();
  const seen = new Set<ts.Node>();
  const visit = (node: ts.Node): void => {
    if (seen.has(node)) return;
    seen.add(node);
    const name = referencedName(node);
    if (name !== undefined) {
      const symbol = checker.getSymbolAtLocation(name);
      const target = symbol && resolveAlias(checker, symbol);
      for (const declaration of target?.declarations ?? []) {
        const file = declaration.getSourceFile().fileName;
        if (!file.startsWith(outDir) || declaration.kind === ts.SyntaxKind.TypeParameter) continue;
        if (!publicSymbols.has(target as ts.Symbol)) {
          leaks.add(`${target?.name} (${relative(outDir, file)})`);
        }
        visit(declaration);
      }
    }
    ts.forEachChild(node, visit);
  };
  for (const symbol of publicSymbols) for (const node of symbol.declarations ?? []) visit(node);
  return [...leaks].sort();
}

function resolveAlias(checker: ts.TypeChecker, symbol: ts.Symbol): ts.Symbol {
  return symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
}

/** The name a type reference (`Foo`, `ns.Foo`, `import("./x").Foo`, `typeof foo`) points at. */
function referencedName(node: ts.Node): ts.Node | undefined {
  if (ts.isTypeReferenceNode(node)) return node.typeName;
  if (ts.isExpressionWithTypeArguments(node)) return node.expression;
  if (ts.isImportTypeNode(node)) return node.qualifier;
  if (ts.isTypeQueryNode(node)) return node.exprName;
  return undefined;
}

describe("the emitted declarations", () => {
  let outDir: string;
  beforeAll(() => {
    outDir = mkdtempSync(join(tmpdir(), "grpc-web-auth-dts-"));
    emitDeclarations(outDir);
  }, 60_000);
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it("refer to no type that the entry points do not export", () => {
    const publicNames = new Set<string>();
    expect(leakedTypes(outDir, publicNames)).toEqual([]);
    // The check saw the API: its main names are there.
    for (const name of [
      "createTokenSource",
      "createAuthInterceptor",
      "TokenSource",
      "ProofScheme",
    ]) {
      expect(publicNames).toContain(name);
    }
    expect(publicNames).toContain("createGrpcWebInterceptors");
  });

  it("export none of the library's internal names", () => {
    const publicNames = new Set<string>();
    leakedTypes(outDir, publicNames);
    const internal = [
      "SharedToken",
      "SourceLink",
      "TabLink",
      "TabSharingLink",
      "TabApis",
      "DpopKey",
      "BindableDpopProofs",
      "ReplayRules",
      "CallReplay",
      "SourceState",
      "ResolvedOptions",
    ];
    expect(internal.filter((name) => publicNames.has(name))).toEqual([]);
  });
});
