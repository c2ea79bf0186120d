/**
 * The package's `engines` tell the truth: the Node it declares is one every runtime dependency
 * declares it runs on, so an install where the package says it works gets no engine warning.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const pkg = require("../../package.json") as {
  engines: { node: string };
  dependencies: Record<string, string>;
};

/** The lowest major a `>=X[.Y.Z]` range admits (the only form these packages use). */
function floor(range: string): number {
  const match = /^>=\s*(\d+)(?:\.\d+){0,2}$/.exec(range.trim());
  if (match === null) throw new Error(`unexpected engines range "${range}"`);
  return Number(match[1]);
}

describe("engines", () => {
  it("declares a Node every runtime dependency declares it runs on", () => {
    const ours = floor(pkg.engines.node);
    for (const name of Object.keys(pkg.dependencies)) {
      // Read from node_modules: not every package exports its package.json.
      const manifest = JSON.parse(
        readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), "utf8"),
      ) as { engines?: { node?: string } };
      const theirs = manifest.engines?.node;
      if (theirs === undefined) continue;
      expect({ name, floor: floor(theirs) }).toEqual({
        name,
        floor: Math.min(floor(theirs), ours),
      });
    }
  });
});
