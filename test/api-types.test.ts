/**
 * The option types reject what the runtime rejects: each call below is a type error (the
 * `@ts-expect-error` lines fail `npm run typecheck` if it type-checks) and a TypeError when run.
 */
import { describe, expect, it } from "vitest";
import {
  createAuthInterceptor,
  createTokenSource,
  dpopProofs,
  passwordGrant,
  refreshTokenGrant,
  shareAcrossTabs,
} from "../src/index.js";

const fetchToken = async () => "token";

const source = createTokenSource({ fetchToken });

const rejected: [string, () => unknown][] = [
  [
    "createTokenSource({})",
    // @ts-expect-error fetchToken is required
    () => createTokenSource({}),
  ],
  [
    "the old endpoint + credentials options",
    () =>
      createTokenSource({
        // @ts-expect-error endpoint and credentials moved to passwordGrant
        endpoint: "/auth/token",
        credentials: { username: "a", password: "b" },
      }),
  ],
  [
    "crossTab: true",
    // @ts-expect-error crossTab takes shareAcrossTabs("channel")
    () => createTokenSource({ fetchToken, crossTab: true }),
  ],
  [
    'crossTab: "app"',
    // @ts-expect-error crossTab takes shareAcrossTabs("channel"), not a name
    () => createTokenSource({ fetchToken, crossTab: "app" }),
  ],
  [
    "dpop: true",
    // @ts-expect-error dpop takes dpopProofs()
    () => createTokenSource({ fetchToken, dpop: true }),
  ],
  [
    "shareAcrossTabs()",
    // @ts-expect-error the channel name is required
    () => shareAcrossTabs(),
  ],
  [
    "passwordGrant without credentials",
    // @ts-expect-error credentials are required
    () => passwordGrant({ endpoint: "https://a.example/t" }),
  ],
  [
    "refreshTokenGrant without a refresh token",
    // @ts-expect-error a refresh token is required
    () => refreshTokenGrant({ endpoint: "https://a.example/t" }),
  ],
  [
    "isAuthError: true",
    // @ts-expect-error isAuthError is a function
    () => createAuthInterceptor(source, { isAuthError: true }),
  ],
  [
    "dpopProofs({ store: {} })",
    // @ts-expect-error store is { load, save }
    () => dpopProofs({ store: {} }),
  ],
];

describe("the option types", () => {
  it.each(rejected)("reject %s, which throws a TypeError at run time too", (_name, run) => {
    expect(run).toThrow(TypeError);
  });
});
