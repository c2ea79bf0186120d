/** Options for {@link answerAuthorization}. */
export interface AnswerOptions {
  /** The login typed into the dev login form; it becomes `sub`. Default `"alice"`. */
  login?: string;
  /** Abort at the first interaction instead (the provider answers `error=access_denied`). */
  abort?: boolean;
}

/**
 * Plays the browser for an authorization request a grant navigated to: follows the provider's
 * redirects with a cookie jar, fills its dev login and consent forms (or aborts), and resolves to
 * the URL the provider sends the browser back to at `redirectUri`.
 */
export async function answerAuthorization(
  authorization: URL | string,
  redirectUri: string,
  options: AnswerOptions = {},
): Promise<string> {
  const jar = createCookieJar();
  let location = await jar.go(String(authorization));
  for (let step = 0; !location.startsWith(redirectUri); step++) {
    if (step > 10) throw new Error(`did not reach the redirect URI; stuck at ${location}`);
    if (/\/interaction\/[^/]+$/.test(new URL(location).pathname)) {
      if (options.abort) {
        location = await jar.go(`${location}/abort`);
        continue;
      }
      const html = await (await jar.fetch(location)).text();
      const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
      const form =
        prompt === "login"
          ? { prompt, login: options.login ?? "alice", password: "any-password" }
          : prompt === "consent"
            ? { prompt }
            : undefined;
      if (!form) throw new Error(`met an interaction it cannot answer: ${prompt}`);
      location = await jar.go(location, { method: "POST", body: new URLSearchParams(form) });
    } else {
      location = await jar.go(location);
    }
  }
  return location;
}

/** A cookie jar for one origin: enough for the provider's interaction and session cookies. */
function createCookieJar() {
  const cookies = new Map<string, string>();
  const jar = {
    async fetch(url: string, init: RequestInit = {}): Promise<Response> {
      const headers = new Headers(init.headers);
      if (cookies.size > 0) {
        headers.set("cookie", [...cookies].map(([name, value]) => `${name}=${value}`).join("; "));
      }
      const res = await fetch(url, { ...init, headers, redirect: "manual" });
      for (const line of res.headers.getSetCookie()) {
        const [pair = ""] = line.split(";");
        const at = pair.indexOf("=");
        const value = pair.slice(at + 1).trim();
        const name = pair.slice(0, at).trim();
        if (value === "" || /max-age=0/i.test(line)) cookies.delete(name);
        else cookies.set(name, value);
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
