/** A revocation that fails on clear() reaches the listeners as `revoke-failed`, never silently. */
import { inspect } from "node:util";
import { Code } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import {
  createTokenSource,
  refreshTokenGrant,
  type TokenEvent,
  TokenFetchError,
  type TokenGrant,
} from "../../src/index.js";
import { type Answer, startOAuthEndpoint } from "./oauth-endpoint.js";

type RevokeFailed = Extract<TokenEvent, { type: "revoke-failed" }>;

async function signedInSource(options: { timeoutMs?: number } = {}) {
  const oauth = await startOAuthEndpoint();
  const tokens = createTokenSource({
    fetchToken: refreshTokenGrant({
      endpoint: oauth.token,
      clientId: "spa",
      refreshToken: "rt-0",
      revokeEndpoint: oauth.revoke,
    }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
  });
  const events: TokenEvent[] = [];
  tokens.subscribe((event) => events.push(event));
  await tokens.getToken();
  const failed = () =>
    events.filter((event): event is RevokeFailed => event.type === "revoke-failed");
  return { oauth, tokens, events, failed };
}

describe("revoke-failed", () => {
  it("carries the OAuth error when the revocation endpoint refuses, once, after cleared", async () => {
    const { oauth, tokens, events, failed } = await signedInSource();
    oauth.next([401, { error: "invalid_client", error_description: "client rt-1 unknown" }]);

    tokens.clear();
    await vi.waitFor(() => expect(failed()).toHaveLength(1));
    const { error } = failed()[0] as RevokeFailed;
    expect(error).toBeInstanceOf(TokenFetchError);
    expect(error).toMatchObject({ code: Code.Internal, status: 401, oauthError: "invalid_client" });
    expect(error.message).toBe(
      "the revocation endpoint answered 401 Unauthorized: invalid_client (client [redacted] unknown)",
    );
    expect(inspect(error)).not.toContain("rt-1");
    expect(events.map((event) => event.type)).toEqual(["token", "cleared", "revoke-failed"]);
    expect(oauth.to("/revoke")).toHaveLength(1);
  });

  it("follows a 503 retried twice (revoking again is harmless), with code Unavailable", async () => {
    const { oauth, tokens, failed } = await signedInSource();
    const unavailable: Answer = [503, { error: "temporarily_unavailable" }, { "retry-after": "0" }];
    oauth.next(unavailable, unavailable, unavailable);

    tokens.clear();
    await vi.waitFor(() => expect(failed()).toHaveLength(1), { timeout: 8_000 });
    expect(failed()[0]?.error).toMatchObject({ code: Code.Unavailable, status: 503 });
    expect(oauth.to("/revoke")).toHaveLength(3);
  });

  it("is not sent when a retry succeeds", async () => {
    const { oauth, tokens, events } = await signedInSource();
    oauth.next([503, { error: "temporarily_unavailable" }, { "retry-after": "0" }]);

    tokens.clear();
    await vi.waitFor(() => expect(oauth.to("/revoke")).toHaveLength(2), { timeout: 8_000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.map((event) => event.type)).toEqual(["token", "cleared"]);
  });

  it("says so when the revocation takes longer than timeoutMs", async () => {
    const { oauth, tokens, failed } = await signedInSource({ timeoutMs: 300 });
    oauth.endpoint.behave(() => new Promise(() => {}));

    const started = Date.now();
    tokens.clear();
    await vi.waitFor(() => expect(failed()).toHaveLength(1), { timeout: 3_000 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(failed()[0]?.error.code).toBe(Code.Unavailable);
    expect(failed()[0]?.error.message).toBe("the revocation did not finish within 300 ms");
  });

  it("names only the error's name when a grant's own revoke fails, which may quote the token", async () => {
    const grant: TokenGrant = async () => ({ token: "at", state: "refresh-secret" });
    grant.revoke = async ({ state }) => {
      throw new RangeError(`could not revoke ${state}`);
    };
    const tokens = createTokenSource({ fetchToken: grant });
    const events: TokenEvent[] = [];
    tokens.subscribe((event) => events.push(event));
    await tokens.getToken();

    tokens.clear();
    await vi.waitFor(() => expect(events.at(-1)?.type).toBe("revoke-failed"));
    const { error } = events.at(-1) as RevokeFailed;
    expect(error.code).toBe(Code.Internal);
    expect(error.message).toBe("the grant's revoke failed (RangeError)");
    expect(error.cause).toBeUndefined();
    expect(inspect(error)).not.toContain("refresh-secret");
  });

  it("is not sent when there was nothing to revoke", async () => {
    const { oauth, tokens, events } = await signedInSource();
    tokens.clear();
    await vi.waitFor(() => expect(oauth.to("/revoke")).toHaveLength(1));
    tokens.clear();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.map((event) => event.type)).toEqual(["token", "cleared", "cleared"]);
  });
});
