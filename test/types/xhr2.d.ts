declare module "xhr2" {
  /** XMLHttpRequest for Node, used only to run the real grpc-web runtime in tests. */
  const XMLHttpRequest: typeof globalThis.XMLHttpRequest;
  export default XMLHttpRequest;
}
