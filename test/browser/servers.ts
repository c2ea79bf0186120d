/** Where the servers of the browser tests listen; playwright.config.ts starts them. */

/** The demo backend, in test mode. Not 8787, so `npm start` can run at the same time. */
export const API_PORT = 8788;
/** `vite preview` of the built pages. Not 5173, for the same reason. */
export const WEB_PORT = 4174;
export const API_URL = `http://127.0.0.1:${API_PORT}`;
/** Also the origin the backend must allow for CORS. */
export const WEB_URL = `http://127.0.0.1:${WEB_PORT}`;
