/** Where the servers of the browser tests listen; playwright.config.ts starts them. */

/**
 * The demo backend, in test mode. Not 8787, so `npm start` can run at the same time;
 * `PW_API_PORT` moves it, so that suites of several checkouts can run at once.
 */
export const API_PORT = Number(process.env.PW_API_PORT ?? 8788);
/** `vite preview` of the built pages. Not 5173, for the same reason; `PW_WEB_PORT` moves it. */
export const WEB_PORT = Number(process.env.PW_WEB_PORT ?? 4174);
export const API_URL = `http://127.0.0.1:${API_PORT}`;
/** Also the origin the backend must allow for CORS. */
export const WEB_URL = `http://127.0.0.1:${WEB_PORT}`;
