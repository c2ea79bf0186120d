export type { AuthOptions, ReplayEvent } from "./auth-options.js";
export type { SharedToken, TabApis } from "./cross-tab.js";
export type { AuthInterceptorOptions } from "./interceptor.js";
export { createAuthInterceptor } from "./interceptor.js";
export { skipAuth } from "./skip-auth.js";
export type { Credentials } from "./token-endpoint.js";
export type { TokenFetchErrorCode, TokenFetchErrorOptions } from "./token-fetch-error.js";
export { TokenFetchCode, TokenFetchError } from "./token-fetch-error.js";
export type {
  CrossTabOptions,
  FetchTokenResult,
  TokenEvent,
  TokenInfo,
  TokenRequestOptions,
  TokenSource,
  TokenSourceOptions,
} from "./token-source.js";
export { createTokenSource } from "./token-source.js";
