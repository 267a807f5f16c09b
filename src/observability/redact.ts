/**
 * Redaction of secret values from anything about to be logged. Two nets:
 * values registered at run time (a token secret read from a Secret) are
 * removed wherever they appear, and patterns catch what was never registered
 * (URI passwords, bearer tokens, fields named like secrets).
 */

export const REDACTED = "[REDACTED]";

const sensitiveKey =
  /(pass(word|wd|phrase)?|secret|token|authorization|api[-_]?key|private[-_]?key|credentials?|sql[-_]?uri|cookie)$/i;

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
  [
    /\b(password|passwd|pwd|secret|token|tokenSecret|apiKey)(["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi,
    `$1$2${REDACTED}`,
  ],
];

const minSecretLength = 4;

export class Redactor {
  private secrets: string[] = [];

  /** Registers a value that must never be written, e.g. one read from a Secret. */
  registerSecret(value: string | undefined | null): void {
    if (!value || value.length < minSecretLength) return;
    const escaped = JSON.stringify(value).slice(1, -1);
    const forms = new Set([value, escaped, encodeURIComponent(value)]);
    const added = [...forms].filter((f) => !this.secrets.includes(f));
    if (added.length === 0) return;
    // Longest first, so a secret containing another is removed whole.
    this.secrets = [...this.secrets, ...added].sort((a, b) => b.length - a.length);
  }

  get registeredCount(): number {
    return this.secrets.length;
  }

  redactText(text: string): string {
    return this.redactWith(text, uriPassword);
  }

  /** For serialized JSON: the last net over a finished log line, which must stay valid JSON. */
  redactJsonLine(line: string): string {
    return this.redactWith(line, uriPasswordInJson);
  }

  private redactWith(text: string, uri: RegExp): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    out = out.replace(uri, `$1${REDACTED}@`);
    for (const [pattern, replacement] of textPatterns) out = out.replace(pattern, replacement);
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
