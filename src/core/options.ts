/**
 * The option-name check every factory shares: an option it does not know is a mistake (a typo, or
 * an option of another factory), never silently ignored.
 */

/**
 * Throws a TypeError when `options` has a name `factory` does not know, naming each such option
 * with the closest known one: one it is a prefix of (or that is a prefix of it), else one within
 * two edits (`timeout` for `timeoutMs`, `baseURL` for `baseUrl`).
 */
export function checkOptionNames(factory: string, options: object, known: readonly string[]): void {
  const unknown = Object.keys(options).filter((name) => !known.includes(name));
  if (unknown.length === 0) return;
  const named = unknown.map((name) => {
    const close =
      known.find((option) => option.startsWith(name) || name.startsWith(option)) ??
      known.find((option) => editDistance(name, option) < 3);
    return close === undefined ? name : `${name} (did you mean ${close}?)`;
  });
  throw new TypeError(
    `${factory}: unknown option ${named.join(", ")}; the options are ${known.join(", ")}`,
  );
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let row = [...b, ""].map((_, j) => j);
  for (let i = 0; i < a.length; i++) {
    const next = [i + 1];
    for (let j = 0; j < b.length; j++) {
      next.push(
        Math.min(
          (row[j + 1] as number) + 1,
          (next[j] as number) + 1,
          (row[j] as number) + (a[i] === b[j] ? 0 : 1),
        ),
      );
    }
    row = next;
  }
  return row[b.length] as number;
}
