/** `*` matches any run of characters; everything else literally. `re:REGEX` is a regular expression. */
export function globToRegExp(pattern: string | RegExp): RegExp {
  if (pattern instanceof RegExp) return pattern;
  if (pattern.startsWith("re:")) return new RegExp(pattern.slice(3));
  const body = pattern
    .split("*")
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`);
}
