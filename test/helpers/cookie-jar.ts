/** A cookie jar for one origin: enough for the provider's interaction and session cookies. */
export function createCookieJar() {
  const cookies = new Map<string, string>();
  const jar = {
    async fetch(url: string, init: RequestInit = {}): Promise<Response> {
      const headers = new Headers(init.headers);
      if (cookies.size > 0) {
        headers.set("cookie", [...cookies].map(([name, value]) => `${name}=${value}`).join("; "));
      }
      const res = await fetch(url, { ...init, headers, redirect: "manual" });
      for (const line of res.headers.getSetCookie()) {
        const [pair = "", ...attributes] = line.split(";");
        const at = pair.indexOf("=");
        const name = pair.slice(0, at).trim();
        const expired = attributes.some((a) => {
          const [key = "", value = ""] = a.trim().split("=");
          if (key.toLowerCase() === "max-age") return Number(value) <= 0;
          if (key.toLowerCase() === "expires") return Date.parse(value) <= Date.now();
          return false;
        });
        if (expired) cookies.delete(name);
        else cookies.set(name, pair.slice(at + 1).trim());
      }
      return res;
    },
    /** Makes the request and returns the absolute URL it redirects to. */
    async go(url: string, init: RequestInit = {}): Promise<string> {
      const res = await jar.fetch(url, init);
      await res.body?.cancel();
      const location = res.headers.get("location");
      if (res.status < 300 || res.status > 399 || location === null) {
        throw new Error(`expected a redirect from ${new URL(url).pathname}, got ${res.status}`);
      }
      return new URL(location, url).href;
    },
  };
  return jar;
}
