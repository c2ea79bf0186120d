import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { at, httpFilterConfig, loadEnvoyConfig, str } from "./envoy-yaml.js";
import { findOnPath } from "./start-envoy.js";

// Envoy runs Lua filters on LuaJIT (Lua 5.1); any 5.1 interpreter runs the script the same way.
const luaPath = ["luajit", "lua5.1"].map(findOnPath).find((p) => p !== undefined);
if (luaPath === undefined) {
  console.log("no luajit or lua5.1 on PATH: skipping the Lua gRPC-status script tests");
}

const script = str(
  at(
    httpFilterConfig(loadEnvoyConfig(), "envoy.filters.http.lua"),
    "default_source_code",
    "inline_string",
  ),
  "Lua inline_string",
);

/** A response as the Lua filter next to the router sees it. */
interface ResponseCase {
  /** Route metadata under envoy.filters.http.lua. */
  metadata: Record<string, boolean>;
  headers: Record<string, string>;
  /** Body chunks the response carries before it ends. */
  chunks?: number;
  /** Trailers, when the response ends with them. */
  trailers?: Record<string, string>;
}

function luaString(value: string): string {
  return JSON.stringify(value); // A JSON string of printable ASCII is a valid Lua string literal.
}

function luaTable(record: Record<string, string | boolean>): string {
  const fields = Object.entries(record).map(
    ([key, value]) =>
      `[${luaString(key)}] = ${typeof value === "string" ? luaString(value) : value}`,
  );
  return `{ ${fields.join(", ")} }`;
}

/** A stand-in for Envoy's stream handle: headers, streamed body chunks, trailers, metadata. */
const HARNESS = `
local function header_map(t)
  return { get = function(_, key) return t[key] end }
end

local function run(case)
  local recorded = "nil"
  local streamed = 0
  local handle = {}
  function handle:metadata() return header_map(case.metadata) end
  function handle:headers() return header_map(case.headers) end
  function handle:bodyChunks()
    return function()
      if streamed < case.chunks then streamed = streamed + 1; return {} end
      return nil
    end
  end
  function handle:trailers()
    if case.trailers == nil then return nil end
    return header_map(case.trailers)
  end
  function handle:streamInfo()
    return { dynamicMetadata = function()
      return { set = function(_, namespace, key, value)
        recorded = namespace .. ":" .. key .. "=" .. value
      end }
    end }
  end
  envoy_on_response(handle)
  io.write(recorded, "\\t", streamed, "\\n")
end
`;

const dir = mkdtempSync(join(tmpdir(), "grpc-web-auth-lua-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the shipped script on `response` and returns what it recorded and how many chunks passed. */
function capture(response: ResponseCase): { recorded: string | undefined; streamed: number } {
  const file = join(dir, "case.lua");
  const call = `run({ metadata = ${luaTable(response.metadata)}, headers = ${luaTable(response.headers)}, chunks = ${response.chunks ?? 0}, trailers = ${response.trailers ? luaTable(response.trailers) : "nil"} })`;
  writeFileSync(file, `${script}\n${HARNESS}\n${call}\n`);
  const result = spawnSync(luaPath ?? "luajit", [file], { encoding: "utf8", timeout: 10_000 });
  expect(result.status, result.stderr).toBe(0);
  const [recorded, streamed] = result.stdout.trim().split("\t");
  return {
    recorded: recorded === "nil" ? undefined : recorded,
    streamed: Number(streamed),
  };
}

const RPC = { grpc_route: true };
const KEY = "grpc_web_auth:grpc_status";

describe.skipIf(luaPath === undefined)(
  "the Lua filter that records each call's gRPC status",
  () => {
    it("records the status from the trailers of a gRPC answer, after streaming every chunk", () => {
      const result = capture({
        metadata: RPC,
        headers: { ":status": "200", "content-type": "application/grpc" },
        chunks: 3,
        trailers: { "grpc-status": "0", "grpc-message": "" },
      });
      expect(result).toEqual({ recorded: `${KEY}=0`, streamed: 3 });
    });

    it("records the status of a Connect call's gRPC answer (application/grpc+json)", () => {
      const result = capture({
        metadata: RPC,
        headers: { ":status": "200", "content-type": "application/grpc+json" },
        chunks: 1,
        trailers: { "grpc-status": "5" },
      });
      expect(result.recorded).toBe(`${KEY}=5`);
    });

    it("records the status of a trailers-only answer from the headers, without waiting for a body", () => {
      const result = capture({
        metadata: RPC,
        headers: { ":status": "200", "content-type": "application/grpc", "grpc-status": "3" },
      });
      expect(result).toEqual({ recorded: `${KEY}=3`, streamed: 0 });
    });

    it("records 16 for an edge 401 to a gRPC-Web call, as local_reply_config rewrote it", () => {
      const result = capture({
        metadata: RPC,
        headers: {
          ":status": "200",
          "grpc-status": "16",
          "grpc-message": "missing or invalid bearer token",
        },
      });
      expect(result.recorded).toBe(`${KEY}=16`);
    });

    it.each([
      ["401", "16"],
      ["403", "7"],
      ["503", "14"],
      ["500", "2"],
    ])(
      "records the code clients derive from a plain HTTP %s on an RPC route: %s",
      (status, code) => {
        const result = capture({
          metadata: RPC,
          headers: { ":status": status, "content-type": "text/plain" },
          chunks: 1,
        });
        expect(result).toEqual({ recorded: `${KEY}=${code}`, streamed: 0 });
      },
    );

    it("records nothing for a preflight answer or a gRPC answer cut off before its trailers", () => {
      expect(capture({ metadata: RPC, headers: { ":status": "200" } }).recorded).toBeUndefined();
      const cut = capture({
        metadata: RPC,
        headers: { ":status": "200", "content-type": "application/grpc" },
        chunks: 2,
      });
      expect(cut).toEqual({ recorded: undefined, streamed: 2 });
    });

    it("records nothing on the token routes, which are not RPC routes", () => {
      const result = capture({
        metadata: {},
        headers: { ":status": "401", "content-type": "text/plain" },
      });
      expect(result.recorded).toBeUndefined();
    });
  },
);
