/**
 * Every factory checks its option names up front: a misspelt or foreign option throws a TypeError
 * that names it and the closest known option, never passes silently.
 */
import { describe, expect, it } from "vitest";
import { createGrpcWebInterceptors } from "../../src/grpc-web.js";
import {
  authorizationCodeGrant,
  createAuthInterceptor,
  createTokenSource,
  dpopProofs,
  passwordGrant,
  refreshTokenGrant,
  shareAcrossTabs,
} from "../../src/index.js";

const fetchToken = async () => "token";
const endpoint = "http://127.0.0.1:1/token";
const credentials = { username: "alice", password: "wonderland" };
// Options as a JavaScript caller (or a stale type) might pass them.
const loose = (options: object) => options as never;

describe("option names", () => {
  const source = createTokenSource({ fetchToken });
  const misspelt: [string, () => unknown, RegExp][] = [
    [
      "createTokenSource's refreshMargin",
      () => createTokenSource(loose({ fetchToken, refreshMargin: 5_000 })),
      /^createTokenSource: unknown option refreshMargin \(did you mean refreshMarginMs\?\)/,
    ],
    [
      "createTokenSource's timeout",
      () => createTokenSource(loose({ fetchToken, timeout: 5_000 })),
      /^createTokenSource: unknown option timeout \(did you mean timeoutMs\?\)/,
    ],
    [
      "createTokenSource's fetchtoken",
      () => createTokenSource(loose({ fetchtoken: fetchToken })),
      /unknown option fetchtoken \(did you mean fetchToken\?\)/,
    ],
    [
      "passwordGrant's refreshUrl",
      () => passwordGrant(loose({ endpoint, credentials, refreshUrl: endpoint })),
      /^passwordGrant: unknown option refreshUrl; the options are endpoint, .*refreshEndpoint/,
    ],
    [
      "passwordGrant's revokeEndpiont",
      () => passwordGrant(loose({ endpoint, credentials, revokeEndpiont: endpoint })),
      /unknown option revokeEndpiont \(did you mean revokeEndpoint\?\)/,
    ],
    [
      "refreshTokenGrant's client_id",
      () =>
        refreshTokenGrant(
          loose({ endpoint, clientId: "spa", refreshToken: "r", client_id: "spa" }),
        ),
      /^refreshTokenGrant: unknown option client_id/,
    ],
    [
      "authorizationCodeGrant's redirectUrl",
      () =>
        authorizationCodeGrant(
          loose({ issuer: "https://id.example", clientId: "spa", redirectUrl: "https://a/cb" }),
        ),
      /^authorizationCodeGrant: unknown option redirectUrl \(did you mean redirectUri\?\)/,
    ],
    [
      "createAuthInterceptor's header",
      () => createAuthInterceptor(source, loose({ header: "x-token" })),
      /^createAuthInterceptor: unknown option header \(did you mean headerName\?\)/,
    ],
    [
      "createGrpcWebInterceptors' baseURL",
      () => createGrpcWebInterceptors(source, loose({ baseURL: "https://api.example.com" })),
      /^createGrpcWebInterceptors: unknown option baseURL \(did you mean baseUrl\?\)/,
    ],
    [
      "createAuthInterceptor given grpc-web's baseUrl",
      () => createAuthInterceptor(source, loose({ baseUrl: "https://api.example.com" })),
      /^createAuthInterceptor: unknown option baseUrl/,
    ],
  ];
  for (const [name, construct, message] of misspelt) {
    it(`throws a TypeError naming ${name}`, () => {
      expect(construct).toThrow(TypeError);
      expect(construct).toThrow(message);
    });
  }

  it("names every unknown option at once", () => {
    expect(() => createTokenSource(loose({ fetchToken, timeout: 1, refreshMargin: 2 }))).toThrow(
      /unknown option timeout \(did you mean timeoutMs\?\), refreshMargin \(did you mean refreshMarginMs\?\)/,
    );
  });

  it("throws when a factory is passed where what it returns is expected", () => {
    expect(() => createTokenSource(loose({ fetchToken, dpop: dpopProofs }))).toThrow(
      /^createTokenSource: dpop must be dpopProofs\(\), called/,
    );
    expect(() => createTokenSource(loose({ fetchToken, crossTab: shareAcrossTabs }))).toThrow(
      /^createTokenSource: crossTab must be shareAcrossTabs\("channel-name"\), not true, a string or the factory/,
    );
  });

  it("accepts every documented option", () => {
    expect(() =>
      createTokenSource({
        fetchToken,
        timeoutMs: 1_000,
        refreshMarginMs: 0,
        crossTab: undefined,
        dpop: undefined,
      }),
    ).not.toThrow();
    expect(() =>
      passwordGrant({
        endpoint,
        credentials,
        clientId: "spa",
        scope: "api",
        http: undefined,
        refreshEndpoint: endpoint,
        revokeEndpoint: endpoint,
        store: undefined,
      }),
    ).not.toThrow();
    expect(() =>
      refreshTokenGrant({
        endpoint,
        clientId: "spa",
        scope: "api",
        refreshToken: "r",
        http: undefined,
        revokeEndpoint: endpoint,
        store: undefined,
      }),
    ).not.toThrow();
    const adapter = {
      headerName: "authorization",
      scheme: "Bearer",
      onReplay: undefined,
      skip: undefined,
      isAuthError: undefined,
    };
    expect(() => createAuthInterceptor(source, adapter)).not.toThrow();
    expect(() => createGrpcWebInterceptors(source, { ...adapter, baseUrl: "" })).not.toThrow();
  });
});
