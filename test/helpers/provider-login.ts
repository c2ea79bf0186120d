import { createCookieJar } from "./cookie-jar.js";
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
