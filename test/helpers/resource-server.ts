/**
 * The API that accepts the test provider's tokens: the demo's (demo/idp/resource-server.ts),
 * DemoService behind a verifier of the provider's JWT access tokens and DPoP proofs.
 */
export {
  type RefusalReason,
  type ResourceServer,
  type ResourceServerOptions,
  type ResourceServerStats,
  startResourceServer,
} from "../../demo/idp/resource-server.js";
