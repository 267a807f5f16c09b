/**
 * Where secrets sit in a piece of text, as pure functions: each rule returns
 * the spans to blank out, and the spans are found both in the text as it is
 * and in the text unescaped (a JSON document quoted inside a string, an error
 * body quoted twice), then mapped back to the original.
 */

export const REDACTED = "[REDACTED]";

/** Characters [start, end) of a text. */
export interface Span {
  start: number;
  end: number;
}

/** A text seen after unescaping, with each character's range in the original. */
interface View {
  text: string;
  starts: number[];
  ends: number[];
}

type Rule = (text: string) => Span[];

/**
 * Spans of the first capture group that took part in each match; `pattern`
 * needs the `d` and `g` flags. `hint`, a cheap test every match passes,
 * spares most log strings the full pattern.
 */
function groupSpans(pattern: RegExp, hint: RegExp): Rule {
  return (text) => {
    if (!hint.test(text)) return [];
    const spans: Span[] = [];
    for (const match of text.matchAll(pattern)) {
      const range = match.indices?.slice(1).find((r) => r !== undefined);
      if (range && range[1] > range[0]) spans.push({ start: range[0], end: range[1] });
    }
    return spans;
  };
}

/**
 * scheme://user:PASSWORD@host: keep the user, drop the password. The password
 * runs to the last "@" of the word, since an unescaped one may contain "@" or
 * "/"; over-redacting a URL is acceptable, leaking half a password is not.
 */
const uriPassword = /[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:(\S*)@/dgi;

const bearerToken = /\b(?:Bearer|Basic)\s+([A-Za-z0-9._~+/=-]+)/dg;

/** The Proxmox token header, `PVEAPIToken=user@realm!tokenid=SECRET` (or a space after the prefix): keeps the token id. */
const proxmoxToken = /\bPVEAPIToken[=\s]\s*[^\s=]+=([^\s"',;\\]+)/dgi;

/**
 * `key=value`, `key: value`, `"key": "value"` and header lines (`X-API-Key:`,
 * `Cookie: PVEAuthCookie=...`) where the key ends like a secret name, with any
 * prefix (PGPASSWORD, db_password, token_secret). The value is a quoted string
 * or a bare word; an authorization scheme before it is kept. The Proxmox
 * header has its own rule above, which keeps the token id.
 */
const secretAssignment =
  /\b(?!PVEAPIToken\b)[\w-]*?(?:password|passwd|pwd|secret|token|api[-_]?key|authorization|cookie|ticket|credentials?)["']?\s*[:=]\s*(?:(?:Bearer|Basic|Digest|Negotiate)\s+)?(?:"(?!PVEAPIToken\b)((?:[^"\\]|\\.)*)"|'(?!PVEAPIToken\b)([^']*)'|(?!PVEAPIToken\b)([^\s"'&,;\\{}[\]]+))/dgi;

const patternRules: Rule[] = [
  groupSpans(uriPassword, /:\/\//),
  groupSpans(bearerToken, /Bearer|Basic/),
  groupSpans(proxmoxToken, /PVEAPIToken/i),
  groupSpans(secretAssignment, /[:=]/),
];

function literalRule(secrets: readonly string[]): Rule {
  return (text) => {
    const spans: Span[] = [];
    for (const secret of secrets) {
      for (let at = text.indexOf(secret); at >= 0; at = text.indexOf(secret, at + secret.length))
        spans.push({ start: at, end: at + secret.length });
    }
    return spans;
  };
}

const escapes: Record<string, string> = {
  '"': '"',
  "'": "'",
  "\\": "\\",
  "/": "/",
  n: "\n",
  r: "\r",
  t: "\t",
  b: "\b",
  f: "\f",
};

/** One level of backslash escapes undone (JSON's, and `\'`); undefined when there is none. */
function unescapeView(view: View): View | undefined {
  const { text } = view;
  if (!text.includes("\\")) return undefined;
  let out = "";
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < text.length;) {
    const [char, width] = escapeAt(text, i);
    out += char;
    starts.push(view.starts[i]!);
    ends.push(view.ends[i + width - 1]!);
    i += width;
  }
  return out === text ? undefined : { text: out, starts, ends };
}

function escapeAt(text: string, i: number): [string, number] {
  if (text[i] !== "\\" || i + 1 >= text.length) return [text[i]!, 1];
  const next = text[i + 1]!;
  const hex = text.slice(i + 2, i + 6);
  if (next === "u" && /^[0-9a-fA-F]{4}$/.test(hex)) return [String.fromCharCode(parseInt(hex, 16)), 6];
  if (Object.hasOwn(escapes, next)) return [escapes[next]!, 2];
  return ["\\", 1];
}

function identityView(text: string): View {
  const starts = Array.from({ length: text.length }, (_, i) => i);
  return { text, starts, ends: starts.map((i) => i + 1) };
}

/** A secret may be quoted inside a string inside a string; deeper than this is not worth the time. */
const maxUnescapeLevels = 3;

/** Every span any rule finds in `text` or in one of its unescaped views, in the original's coordinates. */
export function secretSpans(text: string, registered: readonly string[]): Span[] {
  const rules = [literalRule(registered), ...patternRules];
  const spans = rules.flatMap((rule) => rule(text));
  // Most text has no escapes at all: the character maps are built only for text that does.
  let view = text.includes("\\") ? unescapeView(identityView(text)) : undefined;
  for (let level = 1; view && level <= maxUnescapeLevels; level++) {
    const seen: View = view;
    for (const rule of rules)
      for (const { start, end } of rule(seen.text))
        spans.push({ start: seen.starts[start]!, end: seen.ends[end - 1]! });
    view = unescapeView(seen);
  }
  return spans;
}

/** Replaces each span (overlapping or touching ones merged) with the marker. */
export function blankOut(text: string, spans: readonly Span[]): string {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let out = "";
  let at = 0;
  for (let i = 0; i < sorted.length;) {
    const start = sorted[i]!.start;
    let end = sorted[i]!.end;
    for (i += 1; i < sorted.length && sorted[i]!.start <= end; i++) end = Math.max(end, sorted[i]!.end);
    out += text.slice(at, start) + REDACTED;
    at = end;
  }
  return out + text.slice(at);
}

/** `text` with every registered secret and every secret-looking value blanked out. */
export function redactString(text: string, registered: readonly string[]): string {
  const spans = secretSpans(text, registered);
  return spans.length === 0 ? text : blankOut(text, spans);
}
