/**
 * Redaction of secret values from anything about to be logged. Two nets:
 * values registered at run time (a token secret read from a Secret) are
 * removed wherever they appear, and patterns catch what was never registered
 * (URI passwords, bearer tokens, fields named like secrets).
 */

export const REDACTED = "[REDACTED]";

const sensitiveKey =
  /(pass(word|wd|phrase)?|pwd|secret|token|authorization|api[-_]?key|private[-_]?key|credentials?|sql[-_]?uri|cookie)$/i;

/**
 * scheme://user:PASSWORD@host: keep the user, drop the password. The password
 * runs to the last "@" of the word, since an unescaped one may contain "@" or
 * "/"; over-redacting a URL is acceptable, leaking half a password is not.
 */
const uriPassword = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)\S*@/gi;
/** The same inside a JSON line, where a run must not cross a string's closing quote. */
const uriPasswordInJson = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@"]*:)(?:[^\s"\\]|\\.)*@/gi;

const textPatterns: Array<[RegExp, string]> = [
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${REDACTED}`],
  // Proxmox API token header: PVEAPIToken=user@realm!tokenid=SECRET
  [/(PVEAPIToken=[^\s=]+=)[^\s"',;]+/g, `$1${REDACTED}`],
];

/**
 * `key=value` / `"key": "value"` where the key ends like a secret name, with
 * any prefix (PGPASSWORD, db_password, token_secret). The value is a quoted
 * string (spaces allowed; `\"`-quoted inside a JSON string) or a bare word.
 * The Proxmox header has its own pattern above, which keeps the token id.
 */
const secretAssignment =
  /\b(?!PVEAPIToken=)(\w*?(?:password|passwd|pwd|secret|token|api_?key))(["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|\\"(?:[^"\\]|\\[^"])*\\"|[^\s"'&,;\\{}[\]]+)/gi;

function assignmentRedactor(json: boolean) {
  return (match: string, key: string, separator: string, value: string): string => {
    const jsonKey = separator.startsWith('"');
    // In a JSON line, a `"` after `key=` inside a string value is that string's end, not a value's start.
    if (json && value.startsWith('"') && !jsonKey) return match;
    const quote = value.startsWith('\\"') ? '\\"' : /^["']/.test(value) ? value[0]! : "";
    // A bare JSON value after `"key":` (a number, true) becomes a string, so the line stays valid JSON.
    const keep = quote === "" && jsonKey ? '"' : quote;
    return `${key}${separator}${keep}${REDACTED}${keep}`;
  };
}

const minSecretLength = 4;

export class Redactor {
  private secrets: string[] = [];

  /** Registers a value that must never be written, e.g. one read from a Secret. */
  registerSecret(value: string | undefined | null): void {
    if (!value || value.length < minSecretLength) return;
    const escaped = JSON.stringify(value).slice(1, -1);
    // Secret .data values travel base64-encoded, so that form is as sensitive as the value.
    const base64 = Buffer.from(value, "utf8").toString("base64");
    const forms = new Set([value, escaped, encodeURIComponent(value), base64]);
    const added = [...forms].filter((f) => !this.secrets.includes(f));
    if (added.length === 0) return;
    // Longest first, so a secret containing another is removed whole.
    this.secrets = [...this.secrets, ...added].sort((a, b) => b.length - a.length);
  }

  get registeredCount(): number {
    return this.secrets.length;
  }

  redactText(text: string): string {
    return this.redactWith(text, uriPassword, false);
  }

  /** For serialized JSON: the last net over a finished log line, which must stay valid JSON. */
  redactJsonLine(line: string): string {
    return this.redactWith(line, uriPasswordInJson, true);
  }

  private redactWith(text: string, uri: RegExp, json: boolean): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    out = out.replace(uri, `$1${REDACTED}@`);
    for (const [pattern, replacement] of textPatterns) out = out.replace(pattern, replacement);
    out = out.replace(secretAssignment, assignmentRedactor(json));
    return out;
  }

  /** A redacted deep copy, safe to serialize: errors become plain objects, cycles are cut. */
  redact(value: unknown): unknown {
    return this.walk(value, new WeakSet(), 0);
  }

  private walk(value: unknown, seen: WeakSet<object>, depth: number): unknown {
    if (typeof value === "string") return this.redactText(value);
    if (typeof value === "bigint") return value.toString();
    if (typeof value !== "object" || value === null) return value;
    if (seen.has(value)) return "[Circular]";
    if (depth > 12) return "[Truncated]";
    seen.add(value);
    try {
      if (value instanceof Error) return this.walkError(value, seen, depth);
      if (value instanceof Date) return value.toISOString();
      if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return "[binary]";
      if (value instanceof Map) return this.walk(Object.fromEntries(value), seen, depth + 1);
      if (value instanceof Set) return this.walk([...value], seen, depth + 1);
      if (Array.isArray(value)) return value.map((v) => this.walk(v, seen, depth + 1));
      return this.walkFields(Object.entries(value), seen, depth);
    } finally {
      seen.delete(value);
    }
  }

  private walkError(error: Error, seen: WeakSet<object>, depth: number): Record<string, unknown> {
    const fields: Array<[string, unknown]> = [
      ["name", error.name],
      ["message", error.message],
      ["stack", error.stack],
      ...Object.entries(error),
    ];
    if (error.cause !== undefined) fields.push(["cause", error.cause]);
    return this.walkFields(fields, seen, depth);
  }

  private walkFields(
    entries: Array<[string, unknown]>,
    seen: WeakSet<object>,
    depth: number,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, v] of entries) {
      if (v === undefined || typeof v === "function") continue;
      out[key] = sensitiveKey.test(key) && isSecretLike(v) ? REDACTED : this.walk(v, seen, depth + 1);
    }
    return out;
  }
}

/** A field named like a secret is dropped when it holds a value, not a reference object. */
function isSecretLike(value: unknown): boolean {
  return typeof value === "string" || typeof value === "number" || Buffer.isBuffer(value);
}

/** One redactor for the process, so secrets registered anywhere protect every log line. */
export const redactor = new Redactor();
