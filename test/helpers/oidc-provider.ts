/**
 * The OpenID provider the tests sign in at: the demo's identity provider (demo/idp/provider.ts),
 * panva's `oidc-provider` on a loopback ephemeral port, whose defaults suit a Node test.
 */
export {
  type OidcProvider,
  type OidcProviderEvent,
  type OidcProviderOptions,
  type OidcProviderStats,
  startOidcProvider,
} from "../../demo/idp/provider.js";
