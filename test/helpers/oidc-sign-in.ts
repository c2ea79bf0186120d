import { createHash, randomBytes } from "node:crypto";
import { createCookieJar } from "./cookie-jar.js";
import { signDpopProof, thumbprintOf } from "./dpop-proof.js";
import type { OidcProvider } from "./oidc-provider.js";

/** Options for {@link signIn}. */
export interface SignInOptions {
  /**
   * A DPoP key pair: the code is bound to it (`dpop_jkt`), the code exchange carries a proof, and
   * the tokens come back bound to it (`token_type: "DPoP"`, `cnf.jkt`). Default: none, Bearer.
   */
  dpop?: CryptoKeyPair;
  /** The scope to ask for. Default `"openid " + provider.resourceScope`. */
  scope?: string;
  /** The login typed into the dev login form; it becomes `sub`. Default `"alice"`. */
  login?: string;
}

/** The token endpoint's answer to the code exchange. */
export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  id_token: string;
  scope?: string;
}

/** The code exchange was refused; `body` is the provider's JSON error. */
export class SignInError extends Error {
  override name = "SignInError";
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/**
 * Signs in to `provider` the way a browser SPA does, over real HTTP with a cookie jar: the
 * authorization request with PKCE S256, `state`, `nonce` and `resource`; the dev login form; the
 * consent form; the redirect's `code`; and the form-encoded code exchange with `client_id` and
 * `code_verifier` (plus a DPoP proof, retried once with the server's nonce when it asks).
 * Resolves to the token endpoint's answer. Each call makes a new session: a fresh sign-in.
 *
 * @example
 * const { access_token, refresh_token } = await signIn(provider, { dpop: await generateKeyPair("ES256") });
 */
export async function signIn(
  provider: OidcProvider,
  options: SignInOptions = {},
): Promise<TokenResponse> {
  const login = options.login ?? "alice";
  const scope = options.scope ?? `openid ${provider.resourceScope}`;
  const redirectUri = provider.redirectUris[0] as string;
  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(16).toString("base64url");
  const jar = createCookieJar();

  const auth = new URL(provider.authorization);
  const params: Record<string, string> = {
    client_id: provider.clientId,
    response_type: "code",
    redirect_uri: redirectUri,
    scope,
    state,
    nonce: randomBytes(16).toString("base64url"),
    resource: provider.resource,
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  };
  if (options.dpop) params.dpop_jkt = await thumbprintOf(options.dpop);
  for (const [name, value] of Object.entries(params)) auth.searchParams.set(name, value);

  // Follow redirects by hand, posting a form whenever the provider stops at an interaction.
  let location = await jar.go(auth.href);
  for (let step = 0; !location.startsWith(redirectUri); step++) {
    if (step > 10) throw new Error(`sign-in did not reach the redirect URI; stuck at ${location}`);
    if (/\/interaction\/[^/]+$/.test(new URL(location).pathname)) {
      const page = await jar.fetch(location);
      const html = await page.text();
      const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
      const form =
        prompt === "login"
          ? { prompt, login, password: "any-password" }
          : prompt === "consent"
            ? { prompt }
            : undefined;
      if (!form) throw new Error(`sign-in met an interaction it cannot answer: ${prompt}`);
      location = await jar.go(location, { method: "POST", body: new URLSearchParams(form) });
    } else {
      location = await jar.go(location);
    }
  }
  const callback = new URL(location);
  const error = callback.searchParams.get("error");
  if (error) {
    const description = callback.searchParams.get("error_description");
    throw new SignInError(`authorization refused: ${error} (${description})`, 302, { error });
  }
  if (callback.searchParams.get("state") !== state) throw new Error("sign-in: state mismatch");
  const code = callback.searchParams.get("code");
  if (!code) throw new Error("sign-in: the redirect carries no code");

  const body = new URLSearchParams({
    grant_type: "authorization_code",
    client_id: provider.clientId,
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
  });
  const exchange = async (nonce?: string) => {
    const headers: Record<string, string> = {};
    if (options.dpop) {
      headers.dpop = await signDpopProof(options.dpop, {
        htu: provider.token,
        ...(nonce !== undefined && { nonce }),
      });
    }
    return fetch(provider.token, { method: "POST", headers, body });
  };
  let res = await exchange();
  const nonce = res.headers.get("dpop-nonce");
  if (res.status === 400 && options.dpop && nonce !== null) {
    const answer = (await res.clone().json()) as { error?: string };
    if (answer.error === "use_dpop_nonce") res = await exchange(nonce);
  }
  const answer: unknown = await res.json();
  if (!res.ok) throw new SignInError(`code exchange refused (${res.status})`, res.status, answer);
  return answer as TokenResponse;
}
