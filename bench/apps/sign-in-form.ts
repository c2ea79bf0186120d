/** The sign-in form of the bench apps: what `passwordGrant` asks for credentials. */
import type { Credentials } from "../../src/index.js";

export function signInForm(): Credentials | undefined {
  const form = document.querySelector("form");
  if (form === null) return undefined;
  const data = new FormData(form);
  return { username: String(data.get("username")), password: String(data.get("password")) };
}
