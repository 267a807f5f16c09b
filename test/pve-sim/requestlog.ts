/**
 * The request log: what clients sent, with secrets masked, so tests can assert on it.
 *
 * Masking rules:
 * - the Authorization header and cookies are never logged, only the caller (`user@realm!token`);
 * - a parameter whose name contains `password` (any case) is logged as `***`;
 * - in `env` (NUL-separated `NAME=value` entries) and in any other string parameter made of such entries,
 *   the whole value of an entry is replaced by `***` when its name looks secret (PASSWORD, PASSWD, SECRET,
 *   TOKEN, KEY, CREDENTIAL) or its value carries credentials (a URI with `user:password@`, or a
 *   `password=` option): `SQL_URI=***`. The names stay, so a test can still see which variables were sent;
 *   the simulator's state (`sim.state`) keeps the real values for assertions.
 */
import { globToRegExp } from "./glob.js";

export interface RequestLogEntry {
  /** Milliseconds since the epoch when the request arrived. */
  time: number;
  method: string;
  /** Path below /api2/json, without the query. */
  path: string;
  params: Record<string, unknown>;
  /** `user@realm!token`, `user@realm`, or undefined when not authenticated. */
  caller?: string;
  /** HTTP status sent, or 0 when the response was dropped by a fault. */
  status: number;
  /** The fault applied, if any: fail, drop, unreachable. */
  fault?: string;
  durationMs: number;
}

const SECRET_NAME_RE = /PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL/i;
const CREDENTIAL_VALUE_RE = /:\/\/[^/@\s]*:[^/@\s]*@|password=/i;

export function maskEnvEntry(entry: string): string {
  const eq = entry.indexOf("=");
  if (eq < 0) return entry;
  const name = entry.slice(0, eq);
  const value = entry.slice(eq + 1);
  return SECRET_NAME_RE.test(name) || CREDENTIAL_VALUE_RE.test(value) ? `${name}=***` : entry;
}

export function maskParams(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (/password/i.test(k)) out[k] = "***";
    else if (typeof v === "string" && (k === "env" || v.includes("\0")))
      out[k] = v.split("\0").map(maskEnvEntry).join("\0");
    else if (typeof v === "string" && CREDENTIAL_VALUE_RE.test(v)) out[k] = "***";
    else out[k] = v;
  }
  return out;
}

export class RequestLog {
  readonly entries: RequestLogEntry[] = [];

  constructor(private readonly limit = 100_000) {}

  add(e: RequestLogEntry): void {
    this.entries.push(e);
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
  }

  clear(): void {
    this.entries.length = 0;
  }

  /** Entries whose method matches (when given) and whose path matches the pattern (`*` wildcards or RegExp). */
  find(method: string | undefined, path: string | RegExp): RequestLogEntry[] {
    const re = globToRegExp(path);
    return this.entries.filter((e) => (!method || e.method === method.toUpperCase()) && re.test(e.path));
  }
}
