import { reportError } from "../core/report-error.js";
import type { TokenSource } from "../core/token-source.js";

/** Options shared by the Connect interceptor and the grpc-web interceptors. */
export interface AuthOptions {
  /** The request header that carries the token. Default: `"authorization"`. */
  headerName?: string | undefined;
  /** The scheme before the token; `""` sends the bare token. Default: `"Bearer"`. */
  scheme?: string | undefined;
  /** Called when a call is about to be replayed with a refreshed token. Default: none. */
  onReplay?: ((event: ReplayEvent) => void) | undefined;
  /**
   * Calls to send without a token (public methods): no header, no token fetch. `service` is the
   * fully-qualified name (`"acme.v1.UserService"`), `method` the proto method name
   * (`"GetPublicInfo"`). Asked once per method. Default: none are skipped.
   */
  skip?: ((call: { service: string; method: string }) => boolean) | undefined;
}

/** What {@link AuthOptions.onReplay} receives. */
export interface ReplayEvent {
  /** The method replayed, as `package.Service/Method`. */
  method: string;
}

/** {@link AuthOptions} checked, with their defaults resolved. */
export interface ResolvedAuthOptions {
  /** Lower-case header name. */
  headerName: string;
  /** The header value for a token. */
  headerValue: (token: string) => string;
  /** Calls `onReplay`, if given, without letting its errors escape. */
  notifyReplay: (method: string) => void;
  /** Whether a call of this method goes without a token (memoized per method); none: no skip. */
  skips: ((service: string, method: string) => boolean) | undefined;
  /** Asks the app's `isAuthError` (or checks for code 16); a predicate that throws says no. */
  isAuthError: (error: never) => boolean;
}

const UNAUTHENTICATED = 16;

// RFC 9110 token characters: what a header name or an auth scheme may hold.
const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Checks the source and options of an auth factory; throws TypeErrors naming what to fix. */
export function resolveAuthOptions(
  factory: string,
  source: TokenSource,
  options: AuthOptions & { isAuthError?: ((error: never) => boolean) | undefined },
): ResolvedAuthOptions {
  if (
    typeof source !== "object" ||
    source === null ||
    typeof source.getToken !== "function" ||
    typeof source.refresh !== "function" ||
    typeof source.invalidate !== "function"
  ) {
    throw new TypeError(`${factory}: source must be a TokenSource from createTokenSource`);
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${factory}: options must be an object`);
  }
  const headerName = options.headerName ?? "authorization";
  if (typeof headerName !== "string" || !TOKEN_CHARS.test(headerName)) {
    throw new TypeError(`${factory}: headerName must be a valid HTTP header name`);
  }
  const scheme = options.scheme ?? "Bearer";
  if (typeof scheme !== "string" || (scheme !== "" && !TOKEN_CHARS.test(scheme))) {
    throw new TypeError(
      `${factory}: scheme must be an HTTP auth scheme such as "Bearer", or "" for none`,
    );
  }
  const { onReplay, skip, isAuthError } = options;
  for (const [name, value] of Object.entries({ onReplay, skip, isAuthError })) {
    if (value !== undefined && typeof value !== "function") {
      throw new TypeError(`${factory}: ${name} must be a function`);
    }
  }
  const prefix = scheme === "" ? "" : `${scheme} `;
  const skipped = new Map<string, boolean>();
  return {
    headerName: headerName.toLowerCase(),
    headerValue: (token) => prefix + token,
    notifyReplay: (method) => {
      if (onReplay !== undefined) safely(() => onReplay({ method }));
    },
    skips:
      skip &&
      ((service, method) => {
        const key = `${service}/${method}`;
        let answer = skipped.get(key);
        if (answer === undefined) {
          answer = safely(() => skip({ service, method }) === true);
          skipped.set(key, answer);
        }
        return answer;
      }),
    isAuthError: (error) =>
      isAuthError === undefined
        ? (error as { code?: unknown }).code === UNAUTHENTICATED
        : safely(() => isAuthError(error) === true),
  };
}

/** Runs app code; what it throws is reported, never rethrown, and counts as `false`. */
function safely(run: () => unknown): boolean {
  try {
    return run() === true;
  } catch (error) {
    reportError(error);
    return false;
  }
}
