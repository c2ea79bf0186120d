import type { KyInstance } from "ky";
import {
  type AuthorizationServer,
  allowInsecureRequests,
  type Client,
  customFetch,
  discoveryRequest,
  processDiscoveryResponse,
} from "oauth4webapi";
import type { DpopSigner } from "../../core/grant.js";
import { oauthFetch, toTokenFetchError } from "./oauth-fetch.js";
import { isLoopback, type SignInSettings } from "./options.js";

/** The OpenID provider as oauth4webapi reaches it: its metadata, and the options of a request. */
export interface Provider {
  /** The app as a public client (no client authentication). */
  client: Client;
  /** The provider's metadata, read once (a failure is not kept). */
  discover(signal: AbortSignal): Promise<AuthorizationServer>;
  /** oauth4webapi's options for a token request: the library's ky client, with `dpop`'s proofs. */
  requestOptions(
    dpop: DpopSigner | undefined,
    signal: AbortSignal,
  ): ReturnType<typeof requestOptionsOf>;
}

export function createProvider(settings: SignInSettings, http: KyInstance): Provider {
  const { issuer, clientId } = settings;
  let metadata: Promise<AuthorizationServer> | undefined;
  return {
    client: { client_id: clientId },
    discover(signal) {
      metadata ??= (async () => {
        const response = await discoveryRequest(issuer, {
          algorithm: "oidc",
          [customFetch]: oauthFetch(http, undefined),
          ...insecure(settings),
          signal,
        });
        return processDiscoveryResponse(issuer, response);
      })();
      const current = metadata;
      return current.catch((error: unknown) => {
        if (metadata === current) metadata = undefined;
        throw toTokenFetchError(error, { endpoint: "provider's discovery document", secrets: [] });
      });
    },
    requestOptions: (dpop, signal) => requestOptionsOf(settings, http, dpop, signal),
  };
}

/** Every request: through ky, plain HTTP allowed to a loopback issuer, `resource` sent. */
function requestOptionsOf(
  settings: SignInSettings,
  http: KyInstance,
  dpop: DpopSigner | undefined,
  signal: AbortSignal,
) {
  return {
    [customFetch]: oauthFetch(http, dpop),
    ...insecure(settings),
    signal,
    ...(settings.resource !== undefined && {
      additionalParameters: { resource: settings.resource },
    }),
  };
}

/** Plain HTTP is allowed to a loopback issuer only (development). */
function insecure({ issuer }: SignInSettings) {
  return isLoopback(issuer) ? { [allowInsecureRequests]: true } : {};
}
