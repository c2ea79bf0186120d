/**
 * Sign-out ends what the session held: a credentials object is forgotten by `clear()`, a
 * credentials function is asked again (and may say "none"), and "nothing to sign in with" is told
 * as `session-ended` `"no-credentials"`, not as a refusal, without a request.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import {
  type Credentials,
  createTokenSource,
  passwordGrant,
  refreshTokenGrant,
  type TokenEvent,
  TokenFetchCode,
} from "../../src/index.js";
import { createAuthority } from "../helpers/authority.js";
import { startTokenEndpoint, TEST_USER } from "../helpers/token-endpoint.js";

async function makeEndpoint() {
  const endpoint = await startTokenEndpoint(createAuthority());
  onTestFinished(() => endpoint.close());
  return endpoint;
}

function sessionEnds(events: TokenEvent[]) {
  return events.filter((event) => event.type === "session-ended");
}

describe("sign-out and missing credentials", () => {
  it("forgets a credentials object on clear(): the next fetch fails with no-credentials and sends nothing", async () => {
    const endpoint = await makeEndpoint();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: endpoint.url, credentials: { ...TEST_USER } }),
    });
    const events: TokenEvent[] = [];
    tokens.subscribe((event) => events.push(event));
    await tokens.getToken();
    expect(endpoint.requests).toBe(1);

    tokens.clear();
    for (let i = 0; i < 3; i++) {
      await expect(tokens.getToken()).rejects.toMatchObject({
        code: TokenFetchCode.Unauthenticated,
        reason: "no-credentials",
        status: undefined,
      });
    }

    expect(endpoint.requests).toBe(1);
    expect(sessionEnds(events)).toEqual([{ type: "session-ended", reason: "no-credentials" }]);
  });

  it("asks a credentials function again after clear(), and signs in only with what it gives", async () => {
    const endpoint = await makeEndpoint();
    let given: Credentials | undefined = { ...TEST_USER };
    let asked = 0;
    const tokens = createTokenSource({
      fetchToken: passwordGrant({
        endpoint: endpoint.url,
        credentials: () => {
          asked++;
          return given;
        },
      }),
    });
    const events: TokenEvent[] = [];
    tokens.subscribe((event) => events.push(event));
    await tokens.getToken();

    // The user signed out: the app's form has nothing now.
    given = undefined;
    tokens.clear();
    await expect(tokens.getToken()).rejects.toMatchObject({ reason: "no-credentials" });
    expect(asked).toBe(2);
    expect(endpoint.requests).toBe(1);

    // The user signs in again.
    given = { ...TEST_USER };
    tokens.clear();
    await expect(tokens.getToken()).resolves.toEqual(expect.any(String));
    expect(asked).toBe(3);
    expect(endpoint.requests).toBe(2);
    expect(sessionEnds(events)).toEqual([{ type: "session-ended", reason: "no-credentials" }]);
  });

  it("says no-credentials, not credentials-refused, when a new tab has no credentials yet", async () => {
    const endpoint = await makeEndpoint();
    const tokens = createTokenSource({
      fetchToken: passwordGrant({ endpoint: endpoint.url, credentials: () => undefined }),
    });
    const events: TokenEvent[] = [];
    tokens.subscribe((event) => events.push(event));

    await expect(tokens.getToken()).rejects.toMatchObject({
      code: TokenFetchCode.Unauthenticated,
      reason: "no-credentials",
    });

    expect(endpoint.requests).toBe(0);
    expect(sessionEnds(events)).toEqual([{ type: "session-ended", reason: "no-credentials" }]);
  });

  it("says no-credentials when refreshTokenGrant has no refresh token to start with", async () => {
    const endpoint = await makeEndpoint();
    const tokens = createTokenSource({
      fetchToken: refreshTokenGrant({
        endpoint: endpoint.url,
        clientId: "spa",
        refreshToken: () => undefined,
      }),
    });
    const events: TokenEvent[] = [];
    tokens.subscribe((event) => events.push(event));

    await expect(tokens.getToken()).rejects.toMatchObject({ reason: "no-credentials" });

    expect(endpoint.requests).toBe(0);
    expect(sessionEnds(events)).toEqual([{ type: "session-ended", reason: "no-credentials" }]);
  });
});
