/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Base URL of the demo backend, fixed at build time. Default `http://127.0.0.1:8787`. */
  readonly VITE_API_URL?: string;
  /** The demo identity provider (`demo/idp/main.ts`). Default `http://127.0.0.1:9090`. */
  readonly VITE_IDP_URL?: string;
  /** The API that accepts its tokens. Default `http://127.0.0.1:9091`. */
  readonly VITE_IDP_API_URL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
