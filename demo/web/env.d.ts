/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Base URL of the demo backend, fixed at build time. Default `http://127.0.0.1:8787`. */
  readonly VITE_API_URL?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
