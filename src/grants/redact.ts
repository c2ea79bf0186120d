const EXCERPT_LENGTH = 120;

/** A short excerpt of an error answer, with the secret sent redacted however it was echoed. */
export function excerpt(data: unknown, secret: string): string | undefined {
  if (data === undefined || data === null || data === "") return undefined;
  let text = typeof data === "string" ? data : JSON.stringify(data);
  if (secret !== "") text = text.replace(secretPattern(secret), "[redacted]");
  text = text.replace(/\s+/g, " ").trim();
  return text.length > EXCERPT_LENGTH ? `${text.slice(0, EXCERPT_LENGTH)}…` : text;
}

/** JSON's short escapes: how `"`, `\\`, `/` and some controls may appear inside a JSON string. */
const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "/": "\\/",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/**
 * Matches the secret (a password, a refresh token) as sent, and as an echo may spell it inside a JSON
 * string, whatever the encoder: any character as \\uXXXX (Go escapes <>&,
 * Python everything non-ASCII, in either case of hex), or a short escape (\\/).
 */
function secretPattern(password: string): RegExp {
  const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const hex = (unit: number) =>
    [...unit.toString(16).padStart(4, "0")]
      .map((digit) => (/[a-f]/.test(digit) ? `[${digit}${digit.toUpperCase()}]` : digit))
      .join("");
  const char = (ch: string) => {
    const units = Array.from({ length: ch.length }, (_, i) => `\\\\u${hex(ch.charCodeAt(i))}`);
    const forms = [literal(ch), units.join("")];
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) forms.push(literal(short));
    return `(?:${forms.join("|")})`;
  };
  return new RegExp([...password].map(char).join(""), "g");
}
