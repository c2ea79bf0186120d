import { describe, expect, it } from "vitest";
import type { DemoServer } from "../../demo/server/server.js";
import { fetchToken, postJson, startTestServer } from "./fixtures.js";

const vite = "http://localhost:5173";

function preflight(server: DemoServer, path: string, origin: string) {
  return fetch(server.url + path, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type, x-grpc-web",
    },
  });
}

/** Splits a comma-separated header value into lowercased names. */
function names(value: string | null): string[] {
  return (value ?? "").split(",").map((name) => name.trim().toLowerCase());
}

describe("CORS", () => {
  it("answers a preflight from the Vite dev origin with 204, methods, headers and max-age", async () => {
    const server = await startTestServer();
    const res = await preflight(server, "/demo.v1.DemoService/WhoAmI", vite);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(vite);
    expect(names(res.headers.get("access-control-allow-methods"))).toEqual(
      expect.arrayContaining(["post", "get", "options"]),
    );
    expect(names(res.headers.get("access-control-allow-headers"))).toEqual(
      expect.arrayContaining([
        "authorization",
        "content-type",
        "connect-protocol-version",
        "connect-timeout-ms",
        "grpc-timeout",
        "x-grpc-web",
        "x-user-agent",
      ]),
    );
    expect(res.headers.get("access-control-max-age")).toBe("7200");
    expect(names(res.headers.get("vary"))).toContain("origin");
  });

  it("allows the dpop request header, which carries a DPoP proof", async () => {
    const server = await startTestServer();
    for (const path of ["/auth/token", "/demo.v1.DemoService/WhoAmI"]) {
      const res = await fetch(server.url + path, {
        method: "OPTIONS",
        headers: {
          origin: vite,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type, dpop",
        },
      });
      expect(res.status).toBe(204);
      expect(names(res.headers.get("access-control-allow-headers"))).toContain("dpop");
    }
  });

  it("exposes date, dpop-nonce and www-authenticate on token answers, so the page can read them", async () => {
    const server = await startTestServer();
    const res = await postJson(
      server.tokenUrl,
      { username: "alice", password: "wonderland" },
      { origin: vite },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("date")).toMatch(/GMT$/);
    expect(names(res.headers.get("access-control-expose-headers"))).toEqual(
      expect.arrayContaining(["date", "dpop-nonce", "www-authenticate"]),
    );
  });

  it("allows both loopback spellings of the Vite origin and origins from the options", async () => {
    const server = await startTestServer({ allowedOrigins: ["https://app.example"] });
    for (const origin of ["http://127.0.0.1:5173", "https://app.example"]) {
      const res = await preflight(server, "/auth/token", origin);
      expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    }
  });

  it("gives a disallowed origin no CORS headers at all", async () => {
    const server = await startTestServer();
    for (const origin of ["https://evil.example", "http://localhost:5174", "null"]) {
      const res = await preflight(server, "/auth/token", origin);
      const cors = [...res.headers.keys()].filter((key) => key.startsWith("access-control-"));
      expect(cors, origin).toEqual([]);
      const post = await postJson(server.tokenUrl, {}, { origin });
      expect(post.headers.get("access-control-allow-origin"), origin).toBeNull();
    }
  });

  it("exposes grpc-status, grpc-message and grpc-status-details-bin on RPC answers", async () => {
    const server = await startTestServer();
    const res = await fetch(`${server.url}/demo.v1.DemoService/WhoAmI`, {
      method: "POST",
      headers: {
        origin: vite,
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
        authorization: `Bearer ${await fetchToken(server)}`,
      },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(vite);
    expect(names(res.headers.get("access-control-expose-headers"))).toEqual(
      expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin"]),
    );
  });

  it("applies to the token endpoint's errors and to the test routes", async () => {
    const server = await startTestServer({ testMode: true });
    const denied = await postJson(
      server.tokenUrl,
      { username: "x", password: "y" },
      { origin: vite },
    );
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe(vite);
    const stats = await fetch(`${server.url}/test/stats`, { headers: { origin: vite } });
    expect(stats.headers.get("access-control-allow-origin")).toBe(vite);
    expect((await preflight(server, "/test/token-fault", vite)).status).toBe(204);
  });
});
