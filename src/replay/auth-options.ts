import { GrpcCode } from "../core/codes.js";
import { checkOptionNames } from "../core/options.js";
import { callApp } from "../core/report-error.js";
import type { TokenSource } from "../core/token-source.js";

/** Options shared by the Connect interceptor and the grpc-web interceptors; `E` is their error. */
export interface AuthOptions<E = unknown> {
  /** The request header that carries the token. Default: `"authorization"`. */
  headerName?: string | undefined;
  /**
   * The scheme before a bearer token; `""` sends the bare token. A token bound to a key (DPoP)
   * always goes with its own scheme. Default: `"Bearer"`.
   */
  scheme?: string | undefined;
  /** Called when a call is about to be replayed with a refreshed token. Default: none. */
  onReplay?: ((event: ReplayEvent) => void) | undefined;
  /**
   * Calls to send without a token (public methods): no header, no token fetch. `service` is the
   * fully-qualified name (`"acme.v1.UserService"`), `method` the proto method name
   * (`"GetPublicInfo"`). Asked once per method. Default: none are skipped.
   */
  skip?: ((call: { service: string; method: string }) => boolean) | undefined;
  /**
   * Which failures get the refresh and the one replay: your server may say "expired" with
   * PermissionDenied or an `ErrorInfo` detail. It gets the adapter's error, with its details and
   * metadata. It decides only whether to refresh and replay: one replay per call at most, and the
   * token source's bounds hold whatever it says. One that throws counts as `false`.
   * Default: `error.code === 16` (Unauthenticated).
   */
  isAuthError?: ((error: E) => boolean) | undefined;
}

/** What {@link AuthOptions.onReplay} receives. */
export interface ReplayEvent {
  /** The method replayed, as `package.Service/Method`. */
  method: string;
}

/** What an adapter's calls share: its source and its options, checked, with defaults resolved. */
export interface ReplayRules {
  readonly source: TokenSource;
  /** Lower-case header name. */
  readonly headerName: string;
  /** The header value for `token`: its proof scheme's (DPoP), else the configured scheme's. */
  headerValue(token: string, scheme: string | undefined): string;
  /** Asks the app's `isAuthError` (or checks for code 16) once; one that throws says no. */
  isAuthError(error: unknown): boolean;
  /** Calls `onReplay`, if given, without letting its errors escape. */
  notifyReplay(method: string): void;
  /** Whether a call of this method goes without a token (memoized per method); none: no skip. */
  readonly skips: ((service: string, method: string) => boolean) | undefined;
}

// RFC 9110 token characters: what a header name or an auth scheme may hold.
const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const KNOWN = ["headerName", "scheme", "onReplay", "skip", "isAuthError"];

/**
 * Checks the source and options of an adapter factory (`own`: the options only it has); throws
 * TypeErrors naming what to fix.
 */
export function createReplayRules<E>(
  factory: string,
  source: TokenSource,
  options: AuthOptions<E>,
  own: readonly string[] = [],
): ReplayRules {
  checkSource(factory, source);
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${factory}: options must be an object`);
  }
  checkOptionNames(factory, options, [...KNOWN, ...own]);
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
  return {
    source,
    headerName: headerName.toLowerCase(),
    headerValue: headerValues(scheme),
    notifyReplay: (method) => {
      if (onReplay !== undefined) callApp(() => onReplay({ method }), undefined);
    },
    skips: skip && memoizedSkip(skip),
    isAuthError:
      isAuthError === undefined
        ? (error) => (error as { code?: unknown }).code === GrpcCode.Unauthenticated
        : (error) => callApp(() => isAuthError(error as E) === true, false),
  };
}

function checkSource(factory: string, source: TokenSource): void {
  const methods = ["getToken", "refresh", "invalidate"] as const;
  if (
    typeof source !== "object" ||
    source === null ||
    methods.some((name) => typeof source[name] !== "function")
  ) {
    throw new TypeError(`${factory}: source must be a TokenSource from createTokenSource`);
  }
  for (const name of ["current", "proven", "proofFor"] as const) {
    if (source[name] !== undefined && typeof source[name] !== "function") {
      throw new TypeError(`${factory}: source.${name} must be a function when present`);
    }
  }
}

/** Header values per token: tokens change rarely, so each value is built once, not per call. */
function headerValues(scheme: string): ReplayRules["headerValue"] {
  const prefix = scheme === "" ? "" : `${scheme} `;
  let lastToken = "";
  let lastScheme: string | undefined;
  let lastValue = "";
  return (token, proofScheme) => {
    if (token !== lastToken || proofScheme !== lastScheme) {
      lastValue = proofScheme === undefined ? prefix + token : `${proofScheme} ${token}`;
      lastToken = token;
      lastScheme = proofScheme;
    }
    return lastValue;
  };
}

function memoizedSkip(
  skip: (call: { service: string; method: string }) => boolean,
): (service: string, method: string) => boolean {
  const answers = new Map<string, boolean>();
  return (service, method) => {
    const key = `${service}/${method}`;
    let answer = answers.get(key);
    if (answer === undefined) {
      answer = callApp(() => skip({ service, method }) === true, false);
      answers.set(key, answer);
    }
    return answer;
  };
}
