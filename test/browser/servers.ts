/** Where the servers of the browser tests listen; playwright.config.ts starts them. */

/**
 * `BROWSER_TEST_PORT_OFFSET` moves every port, so two checkouts can run the suite at once (a
 * server already on a port is reused outside CI, even another checkout's). Default 0.
 */
const OFFSET = Number(process.env.BROWSER_TEST_PORT_OFFSET ?? 0) || 0;

/** The demo backend, in test mode. Not 8787, so `npm start` can run at the same time. */
export const API_PORT = 8788 + OFFSET;
/** `vite preview` of the built pages. Not 5173, for the same reason. */
export const WEB_PORT = 4174 + OFFSET;
export const API_URL = `http://127.0.0.1:${API_PORT}`;
/** Also the origin the backend must allow for CORS. */
export const WEB_URL = `http://127.0.0.1:${WEB_PORT}`;

/** The demo identity provider (demo/idp/main.ts): oidc-provider, the API it serves, its stats. */
export const IDP_PORT = 8790 + OFFSET;
export const IDP_API_PORT = 8791 + OFFSET;
export const IDP_STATS_PORT = 8792 + OFFSET;
export const IDP_URL = `http://127.0.0.1:${IDP_PORT}`;
export const IDP_API_URL = `http://127.0.0.1:${IDP_API_PORT}`;
export const IDP_STATS_URL = `http://127.0.0.1:${IDP_STATS_PORT}`;
/** Access tokens of 4 s: the sign-in specs see many refreshes in a short soak. */
export const IDP_ACCESS_TOKEN_TTL = 4;
