import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const buf = join(root, "node_modules", ".bin", "buf");

/** Runs buf from the repo root, so buf.gen.yaml finds the local protoc-gen-es. */
function runBuf(...args: string[]) {
  return run(buf, args, { cwd: root });
}

/** A temp directory removed when the test ends. */
async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "grpc-web-auth-codegen-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every file under `dir`, by path relative to it, with its content. */
async function readTree(dir: string): Promise<Map<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = new Map<string, string>();
  for (const entry of entries.filter((e) => e.isFile())) {
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path), await readFile(path, "utf8"));
  }
  return files;
}

describe("generated code", () => {
  it("in gen/ is exactly what `buf generate` produces from proto/", async () => {
    const out = await makeTempDir();
    await runBuf("generate", "--output", out);
    const fresh = await readTree(join(out, "gen"));
    const committed = await readTree(join(root, "gen"));

    const hint = "gen/ is stale: run `npx buf generate` and commit the result";
    expect([...committed.keys()].sort(), hint).toEqual([...fresh.keys()].sort());
    for (const [path, content] of fresh)
      expect(committed.get(path), `${hint} (${path})`).toBe(content);
  });

  it("comes from protos that pass `buf lint`", async () => {
    await expect(runBuf("lint")).resolves.toBeDefined();
  });
});
