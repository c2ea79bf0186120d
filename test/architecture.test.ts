/**
 * The source tree is the architecture: folders by concept, a leaf of shared contracts, small
 * functions, explicit entry points. These checks read `src/` with the TypeScript compiler.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SRC = join(ROOT, "src");
const MAX_FUNCTION_LINES = 60;

/** The folders of src/ and what each may import (besides itself and core/). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  source: ["dpop"],
  replay: [],
  connect: ["replay"],
  "grpc-web": ["replay"],
  tabs: [],
  dpop: [],
  grants: [],
};

function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

function parse(path: string): ts.SourceFile {
  return ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true);
}

const folderOf = (path: string) => relative(SRC, path).split("/").slice(0, -1)[0] ?? "";

/** Relative imports and re-exports of a file, resolved to paths under src/. */
function importsOf(file: ts.SourceFile): string[] {
  const found: string[] = [];
  for (const statement of file.statements) {
    const specifier =
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
      statement.moduleSpecifier !== undefined &&
      ts.isStringLiteral(statement.moduleSpecifier)
        ? statement.moduleSpecifier.text
        : undefined;
    if (specifier?.startsWith(".")) {
      found.push(resolve(dirname(file.fileName), specifier.replace(/\.js$/, ".ts")));
    }
  }
  return found;
}

/** Every function-like node longer than the limit, as `file:line name (N lines)`. */
function longFunctions(file: ts.SourceFile): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const start = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const end = file.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES) {
        const name = node.name?.getText(file) ?? "(anonymous)";
        found.push(`${relative(ROOT, file.fileName)}:${start + 1} ${name} (${lines} lines)`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

describe("the source tree", () => {
  const files = sourceFiles().map(parse);

  it(`has no function over ${MAX_FUNCTION_LINES} lines`, () => {
    expect(files.flatMap(longFunctions)).toEqual([]);
  });

  it("has folders that import only core/ and the folders they build on, never back up", () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = folderOf(file.fileName);
      if (from === "") continue;
      for (const target of importsOf(file)) {
        const to = folderOf(target);
        if (to === from || to === "core") continue;
        if (to === "" || !(ALLOWED[from] ?? []).includes(to)) {
          wrong.push(`${relative(ROOT, file.fileName)} imports ${relative(ROOT, target)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it("keeps core/ a leaf that imports nothing outside it", () => {
    const core = files.filter((file) => folderOf(file.fileName) === "core");
    expect(core.length).toBeGreaterThan(0);
    const outside = core.flatMap((file) =>
      importsOf(file)
        .filter((target) => folderOf(target) !== "core")
        .map((target) => `${relative(ROOT, file.fileName)} imports ${relative(ROOT, target)}`),
    );
    expect(outside).toEqual([]);
  });

  it("has no import cycles", () => {
    const graph = new Map(files.map((file) => [file.fileName, importsOf(file)]));
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const walk = (path: string, trail: string[]) => {
      if (state.get(path) === "done") return;
      if (state.get(path) === "open") {
        const loop = trail.slice(trail.indexOf(path));
        cycles.push([...loop, path].map((p) => relative(SRC, p)).join(" → "));
        return;
      }
      state.set(path, "open");
      for (const next of graph.get(path) ?? []) walk(next, [...trail, path]);
      state.set(path, "done");
    };
    for (const path of graph.keys()) walk(path, []);
    expect(cycles).toEqual([]);
  });

  it("has entry points that list their exports by name, and a note opening every folder", () => {
    for (const entry of ["index.ts", "grpc-web.ts"]) {
      const text = readFileSync(join(SRC, entry), "utf8");
      expect(text).not.toMatch(/export \*/);
    }
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory());
    expect(folders.map((folder) => folder.name).sort()).toEqual(Object.keys(ALLOWED).sort());
    for (const folder of folders) {
      const note = readFileSync(join(SRC, folder.name, "README.md"), "utf8").trim();
      expect(note.split("\n").length, `src/${folder.name}/README.md`).toBeLessThanOrEqual(12);
    }
  });
});
