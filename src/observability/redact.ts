/**
 * Redaction of secret values from anything about to be logged. Two nets:
 * values registered at run time (a token secret read from a Secret) are
 * removed wherever they appear, and patterns catch what was never registered
 * (URI passwords, bearer tokens, fields and headers named like secrets).
 */
import { REDACTED, redactString } from "./redact-text.js";

export { REDACTED };

/**
 * A field named like a secret holds one, whatever its shape (a string, a list
 * of them, an object around one). A reference to a Secret (`credentialsSecretRef`,
 * `uriSecretRef`) only names it: it ends in Ref and is kept.
 */
const sensitiveKey =
  /(pass(word|wd|phrase)?|pwd|secret|token|authorization|api[-_]?key|private[-_]?key|credentials?|sql[-_]?uri|cookie|ticket)$/i;

export function isSensitiveKey(key: string): boolean {
  return sensitiveKey.test(key);
}

/**
 * Each string literal of a JSON line, with what follows it: `:` makes it an
 * object key, and a bare number or boolean may come after that key.
 */
const jsonToken = /"(?:[^"\\]|\\.)*"(\s*:\s*(-?\d[\d.eE+-]*|true|false)?)?/g;

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
    this.secrets = [...this.secrets, ...added];
  }

  get registeredCount(): number {
    return this.secrets.length;
  }

  redactText(text: string): string {
    return redactString(text, this.secrets);
  }

  /**
   * For a serialized JSON line: the last net over a finished log line, which
   * must stay valid JSON. Every string in it, object keys included, is
   * decoded, redacted as text and encoded again; a string or bare scalar
   * under a key named like a secret is replaced.
   */
  redactJsonLine(line: string): string {
    let underSensitiveKey = false;
    return line.replace(jsonToken, (token: string, colon?: string, scalar?: string) => {
      const literal = colon === undefined ? token : token.slice(0, -colon.length);
      const text = decodeJsonString(literal);
      if (text === undefined) return token;
      const redactValue = underSensitiveKey;
      underSensitiveKey = false;
      const redacted = this.encodeRedacted(literal, text);
      if (colon === undefined) return redactValue ? JSON.stringify(REDACTED) : redacted;
      if (!isSensitiveKey(text)) return redacted + colon;
      if (scalar === undefined) {
        underSensitiveKey = true;
        return redacted + colon;
      }
      return redacted + colon.slice(0, -scalar.length) + JSON.stringify(REDACTED);
    });
  }

  private encodeRedacted(literal: string, text: string): string {
    const redacted = this.redactText(text);
    return redacted === text ? literal : JSON.stringify(redacted);
  }

  /**
   * A redacted deep copy, safe to serialize: errors become plain objects,
   * cycles are cut. Object keys are kept as they are (renaming one could merge
   * two entries): a secret in a key is left to `redactJsonLine`.
   */
  redact(value: unknown): unknown {
    return this.walk(value, new WeakSet(), 0);
  }

  private walk(value: unknown, seen: WeakSet<object>, depth: number): unknown {
    if (typeof value === "string") return this.redactText(value);
    if (typeof value === "bigint" || typeof value === "number") return this.redactScalar(value);
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

  /** A number that is a registered secret (a PIN, a numeric token) goes too, as a string. */
  private redactScalar(value: number | bigint): number | string {
    const text = String(value);
    if (this.redactText(text) !== text) return REDACTED;
    return typeof value === "bigint" ? text : value;
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
    const kept = entries.filter(([, v]) => v !== undefined && typeof v !== "function");
    // fromEntries, not assignment: a "__proto__" key stays a field instead of replacing the prototype.
    return Object.fromEntries(
      kept.map(([key, v]) => [
        key,
        isSensitiveKey(key) && v !== null ? REDACTED : this.walk(v, seen, depth + 1),
      ]),
    );
  }
}

function decodeJsonString(literal: string): string | undefined {
  // Without a backslash the literal's text is what lies between its quotes.
  if (!literal.includes("\\")) return literal.slice(1, -1);
  try {
    return JSON.parse(literal) as string;
  } catch {
    return undefined;
  }
}

/** One redactor for the process, so secrets registered anywhere protect every log line. */
export const redactor = new Redactor();
