import { afterAll, beforeAll } from "vitest";
import XMLHttpRequest from "xhr2";

/**
 * Gives Google's grpc-web runtime the XMLHttpRequest it needs in Node, for the test file that
 * calls this (a test-only global; the library itself never touches globals).
 */
export function useXmlHttpRequest(): void {
  const had = "XMLHttpRequest" in globalThis;
  beforeAll(() => {
    if (!had) Object.assign(globalThis, { XMLHttpRequest });
  });
  afterAll(() => {
    if (!had) Reflect.deleteProperty(globalThis, "XMLHttpRequest");
  });
}
