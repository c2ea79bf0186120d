export type { AuthInterceptorOptions } from "./connect/interceptor.js";
export { createAuthInterceptor } from "./connect/interceptor.js";
export { isRetryableError } from "./connect/retryable.js";
export { skipAuth } from "./connect/skip-auth.js";
export type {
  DpopKeyHandle,
  DpopSigner,
  FetchTokenResult,
  GrantAttachment,
  GrantContext,
  GrantedToken,
  RevokeContext,
  TokenGrant,
} from "./core/grant.js";
export type { Proof, ProofAnswer, ProofScheme } from "./core/proof-scheme.js";
export type { TabSharing } from "./core/tab-sharing.js";
export type {
  SessionEndReason,
  TokenFetchErrorCode,
  TokenFetchErrorOptions,
} from "./core/token-fetch-error.js";
export { TokenFetchCode, TokenFetchError } from "./core/token-fetch-error.js";
export type {
  DisposableTokenSource,
  TokenEvent,
  TokenInfo,
  TokenRequestOptions,
  TokenSource,
} from "./core/token-source.js";
export { DpopKeyRejectedError } from "./dpop/dpop-key-error.js";
export type { DpopKeyStore, DpopProofs, DpopProofsOptions } from "./dpop/dpop-proofs.js";
export { dpopProofs } from "./dpop/dpop-proofs.js";
export { indexedDbKeyStore } from "./dpop/indexed-db-key-store.js";
export type { Credentials, PasswordGrantOptions } from "./grants/password.js";
export { passwordGrant } from "./grants/password.js";
export type { RefreshTokenStore } from "./grants/refresh.js";
export type { RefreshTokenGrantOptions } from "./grants/refresh-token.js";
export { refreshTokenGrant } from "./grants/refresh-token.js";
export type {
  AuthorizationCodeGrant,
  AuthorizationCodeGrantOptions,
} from "./grants/sign-in/authorization-code.js";
export { authorizationCodeGrant } from "./grants/sign-in/authorization-code.js";
export type { SignInStorage } from "./grants/sign-in/pending-sign-in.js";
export type { SignInKeyStore } from "./grants/sign-in/sign-in-keys.js";
export type { AuthOptions, ReplayEvent } from "./replay/auth-options.js";
export type { TokenSourceOptions } from "./source/options.js";
export { createTokenSource } from "./source/token-source.js";
export type { ShareAcrossTabsOptions } from "./tabs/share-across-tabs.js";
export { shareAcrossTabs } from "./tabs/share-across-tabs.js";
