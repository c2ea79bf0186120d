import type { IncomingMessage } from "node:http";

/**
 * Finds the URL a client used for a request, as a DPoP proof's `htu` must name it. By default
 * that is `http://` + the `Host` header + the path: right when clients reach this server directly.
 * Behind a proxy that changes scheme, host or path prefix, give `publicUrl` (such as
 * `https://api.example/backend`): the path is then appended to it instead.
 */
export interface PublicUrl {
  /** The public URL of a Node request, without query. */
  ofRequest(req: IncomingMessage): string;
  /** The public URL of a Connect request URL (`req.url` in an interceptor), without query. */
  ofUrl(url: string): string;
}

/** Creates the resolver; `publicUrl` must be an absolute http(s) URL without query or fragment. */
export function createPublicUrl(publicUrl?: string): PublicUrl {
  const base = publicUrl === undefined ? undefined : checkPublicUrl(publicUrl);
  const withPath = (origin: string, path: string) => (base ?? origin) + path;
  return {
    ofRequest(req) {
      const path = (req.url ?? "/").split("?", 1)[0] ?? "/";
      return withPath(`http://${req.headers.host ?? "localhost"}`, path);
    },
    ofUrl(url) {
      const parsed = new URL(url);
      return withPath(parsed.origin, parsed.pathname);
    },
  };
}

function checkPublicUrl(value: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch {}
  if (
    !parsed ||
    (parsed.protocol !== "http:" && parsed.protocol !== "https:") ||
    parsed.search !== "" ||
    parsed.hash !== "" ||
    value.includes("?") ||
    value.includes("#")
  ) {
    throw new TypeError(
      `publicUrl must be an http(s) URL without query or fragment, like "https://api.example", got "${value}"`,
    );
  }
  return parsed.href.replace(/\/$/, "");
}
