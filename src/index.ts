export type { AuthOptions, ReplayEvent } from "./auth-options.js";
export type { DpopKeyStore, DpopProofs, DpopProofsOptions } from "./dpop.js";
export { dpopProofs } from "./dpop.js";
export { indexedDbKeyStore } from "./dpop-key-store.js";
export type {
  DpopSigner,
  FetchTokenResult,
  GrantContext,
  GrantedToken,
  RevokeContext,
  TokenGrant,
} from "./grant.js";
export type { Credentials, PasswordGrantOptions } from "./grants/password.js";
export { passwordGrant } from "./grants/password.js";
export type { RefreshTokenStore } from "./grants/refresh.js";
export type { RefreshTokenGrantOptions } from "./grants/refresh-token.js";
export { refreshTokenGrant } from "./grants/refresh-token.js";
export type { AuthInterceptorOptions } from "./interceptor.js";
export { createAuthInterceptor } from "./interceptor.js";
export { isRetryableError } from "./retryable.js";
export type { ShareAcrossTabsOptions, TabApis } from "./share-across-tabs.js";
export { shareAcrossTabs } from "./share-across-tabs.js";
export { skipAuth } from "./skip-auth.js";
export type { SharedToken, TabSharing } from "./tab-sharing.js";
export type {
  SessionEndReason,
  TokenFetchErrorCode,
  TokenFetchErrorOptions,
} from "./token-fetch-error.js";
export { TokenFetchCode, TokenFetchError } from "./token-fetch-error.js";
export type {
  TokenEvent,
  TokenInfo,
  TokenRequestOptions,
  TokenSource,
  TokenSourceOptions,
} from "./token-source.js";
export { createTokenSource } from "./token-source.js";
