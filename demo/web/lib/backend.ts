/**
 * Where the demo backend is, and its test-mode routes (`demo/server/README.md`), which the page
 * uses to show a revocation and the tests use to steer the server.
 */

/** Base URL of the backend: `VITE_API_URL` at build time, else the `npm start` backend. */
export const DEFAULT_API_URL: string = trimSlash(
  import.meta.env.VITE_API_URL || "http://127.0.0.1:8787",
);

/** URL of the backend's token endpoint. */
export function tokenEndpoint(apiUrl: string): string {
  return `${trimSlash(apiUrl)}/auth/token`;
}

/** URL of the backend's revocation endpoint (RFC 7009), where signing out revokes the refresh token. */
export function revokeEndpoint(apiUrl: string): string {
  return `${trimSlash(apiUrl)}/auth/revoke`;
}

/** How the backend answered a probe of its test routes. */
export type BackendMode = "test" | "normal" | "unreachable";

/** Whether the backend serves the `/test/` routes (it was started with `--test-mode`). */
export async function probeBackend(apiUrl: string): Promise<BackendMode> {
  try {
    const res = await fetch(`${trimSlash(apiUrl)}/test/stats`, { cache: "no-store" });
    await res.body?.cancel();
    return res.ok ? "test" : "normal";
  } catch {
    return "unreachable";
  }
}

/** Revokes every token the backend has issued so far (test mode only). */
export async function revokeAllTokens(apiUrl: string): Promise<void> {
  const res = await fetch(`${trimSlash(apiUrl)}/test/revoke`, { method: "POST" });
  if (!res.ok) throw new Error(`POST /test/revoke answered ${res.status}`);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}
