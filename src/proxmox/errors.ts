/**
 * Errors of the Proxmox client and their classification (shared/reference/proxmox-ve-api.md,
 * "Transport, auth, errors"). Everything here is pure: the transport describes what went wrong as a
 * `Failure`, `classify` decides what it means, `proxmoxError` builds the error the caller sees.
 *
 * An error carries the method, the API path, the HTTP status, Proxmox's message and its per-parameter
 * `errors`, and the token id, never the token secret, the Authorization header or request parameters
 * (a realm's bind password or a container's env would be among them).
 */

/**
 * What the caller may do about a failure:
 * - `transient`: the same request may succeed later (the client retries it when it is idempotent);
 * - `permanent`: the same request fails again until something changes (input, privileges, state);
 * - `outcome-unknown`: a POST or DELETE was sent and no answer came back: it may or may not have
 *   happened. It is never repeated; the caller looks at Proxmox to learn what happened;
 * - `cancelled`: the caller's AbortSignal fired before the request could have had an effect.
 */
export type ErrorClass = "transient" | "permanent" | "outcome-unknown" | "cancelled";

export type ErrorReason =
  /** The connection could not be made (refused, no route, name resolution). */
  | "network"
  | "timeout"
  /** The connection broke after the request was sent. */
  | "connection-reset"
  | "malformed-response"
  /** The server's certificate is not trusted by this endpoint's CA bundle. */
  | "tls-untrusted"
  /** Another TLS failure (protocol mismatch, handshake refused). */
  | "tls"
  | "cancelled"
  /** A 5xx that is not one of the known permanent texts. */
  | "server-error"
  /** 595/596: pveproxy could not reach the node the request is for. */
  | "node-unreachable"
  /** `can't lock file ... got timeout` */
  | "lock-timeout"
  /** `CT is locked (create)` and the like */
  | "locked"
  | "bad-request"
  | "unauthorized"
  | "forbidden"
  | "already-exists"
  | "does-not-exist"
  | "already-running"
  | "not-running"
  /** The container runs, and the call needs it stopped (`unable to destroy CT 101 - container is running`). */
  | "running"
  /** `digest` no longer matches: someone changed the configuration since it was read. */
  | "config-changed"
  /** Another refusal Proxmox will repeat (`no options specified`, a required option deleted, ...). */
  | "refused"
  | "not-implemented"
  | "unsupported-version";

/** What the transport saw, before any interpretation. */
export type Failure =
  | { type: "response"; status: number; message: string }
  | {
      type: "network";
      /** Node's error code, e.g. ECONNREFUSED, ECONNRESET, DEPTH_ZERO_SELF_SIGNED_CERT. */
      code?: string;
      /** Whether the request may have reached the server (the connection was up when it failed). */
      sent: boolean;
      timedOut?: boolean;
      cancelled?: boolean;
      /** A 200 whose body was not the JSON Proxmox sends. */
      malformed?: boolean;
    };

export interface Classification {
  errorClass: ErrorClass;
  reason: ErrorReason;
}

/** Methods that change something and are not safe to repeat when their outcome is unknown. */
export function isNonIdempotent(method: string): boolean {
  const m = method.toUpperCase();
  return m === "POST" || m === "DELETE";
}

/**
 * Proxmox answers almost every failure with HTTP 500 and a text; these texts say whether repeating helps.
 * Order matters: the first match wins.
 */
const TEXT_RULES: ReadonlyArray<readonly [RegExp, ErrorClass, ErrorReason]> = [
  [/can't lock file .*got timeout/i, "transient", "lock-timeout"],
  [/\b(CT|VM) is locked\b/, "transient", "locked"],
  [/detected modified configuration/, "permanent", "config-changed"],
  [/already exists|refusing to override existing file/, "permanent", "already-exists"],
  [/does not exist|no such cluster node/, "permanent", "does-not-exist"],
  [/already running/, "permanent", "already-running"],
  [/\bnot running\b/, "permanent", "not-running"],
  [/container is running|VM is running/, "permanent", "running"],
  [
    /no options specified|unable to (delete required|modify read-only) option|protection mode enabled|missing value for required option|Only root may use this option|does not support content type|is not available on node|unable to create builtin|Cannot sync realm/,
    "permanent",
    "refused",
  ],
];

/** Node's codes for a certificate the endpoint's CA bundle does not vouch for. */
const UNTRUSTED_CERT_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

function classifyResponse(status: number, message: string): Classification {
  if (status === 401) return { errorClass: "permanent", reason: "unauthorized" };
  if (status === 403) return { errorClass: "permanent", reason: "forbidden" };
  if (status === 595 || status === 596) return { errorClass: "transient", reason: "node-unreachable" };
  if (status === 400) return { errorClass: "permanent", reason: "bad-request" };
  if (status === 408 || status === 429) return { errorClass: "transient", reason: "server-error" };
  if (status === 404) return { errorClass: "permanent", reason: "does-not-exist" };
  if (status === 501) return { errorClass: "permanent", reason: "not-implemented" };
  if (status < 500) return { errorClass: "permanent", reason: "bad-request" };
  for (const [re, errorClass, reason] of TEXT_RULES) if (re.test(message)) return { errorClass, reason };
  return { errorClass: "transient", reason: "server-error" };
}

function classifyNetwork(f: Extract<Failure, { type: "network" }>, repeatable: boolean): Classification {
  const unknown = f.sent && !repeatable;
  if (f.cancelled) return { errorClass: unknown ? "outcome-unknown" : "cancelled", reason: "cancelled" };
  if (f.code && UNTRUSTED_CERT_CODES.has(f.code)) return { errorClass: "permanent", reason: "tls-untrusted" };
  if (f.code && /^ERR_(SSL|TLS)_/.test(f.code)) return { errorClass: "permanent", reason: "tls" };
  if (!f.sent) return { errorClass: "transient", reason: f.timedOut ? "timeout" : "network" };
  const reason: ErrorReason = f.timedOut
    ? "timeout"
    : f.malformed
      ? "malformed-response"
      : "connection-reset";
  return { errorClass: unknown ? "outcome-unknown" : "transient", reason };
}

/**
 * The meaning of a failure of `method`: a pure decision, tested as a table. `repeatable`: whether the
 * request, sent twice, leaves the state sending it once would (by default: not for a POST or DELETE).
 */
export function classify(
  method: string,
  failure: Failure,
  repeatable = !isNonIdempotent(method),
): Classification {
  return failure.type === "response"
    ? classifyResponse(failure.status, failure.message)
    : classifyNetwork(failure, repeatable);
}

/** A 403's text: `Permission check failed (/vms/100, VM.Allocate)`, or `(...|...)` when any one would do. */
export interface PermissionDenial {
  aclPath?: string;
  /** The privileges Proxmox asked for; with several, any one of them suffices. */
  privileges: string[];
}

const PERMISSION_RE = /Permission check failed \((\/[^,()]*), ([A-Za-z][\w.]*(?:\|[A-Za-z][\w.]*)*)\)/;

export function parsePermissionDenial(message: string): PermissionDenial {
  const m = PERMISSION_RE.exec(message);
  if (!m) return { privileges: [] };
  return { aclPath: m[1]!, privileges: m[2]!.split("|") };
}

/** Where a failed call was going. */
export interface CallContext {
  method: string;
  /** API path below /api2/json, e.g. `/nodes/pve1/lxc`. */
  path: string;
  /** `https://host:port` */
  endpoint: string;
  /** `user@realm!name` */
  tokenId: string;
  /** Whether the call may be sent twice to the effect of once; default: not for a POST or DELETE. */
  repeatable?: boolean;
}

export interface ProxmoxErrorFields extends CallContext, Classification {
  message: string;
  status?: number;
  /** Proxmox's own message (body `message`, else the reason phrase), without the trailing newline. */
  pveMessage?: string;
  /** Per-parameter messages of a 400. */
  errors?: Record<string, string>;
  /** Node's error code of a network failure. */
  code?: string;
  cause?: unknown;
}

export class ProxmoxError extends Error {
  override name = "ProxmoxError";
  readonly errorClass: ErrorClass;
  readonly reason: ErrorReason;
  readonly method: string;
  readonly path: string;
  readonly endpoint: string;
  readonly tokenId: string;
  readonly status?: number;
  readonly pveMessage?: string;
  readonly errors?: Record<string, string>;
  readonly code?: string;

  constructor(f: ProxmoxErrorFields) {
    super(f.message, f.cause === undefined ? undefined : { cause: f.cause });
    this.errorClass = f.errorClass;
    this.reason = f.reason;
    this.method = f.method;
    this.path = f.path;
    this.endpoint = f.endpoint;
    this.tokenId = f.tokenId;
    if (f.status !== undefined) this.status = f.status;
    if (f.pveMessage !== undefined) this.pveMessage = f.pveMessage;
    if (f.errors !== undefined) this.errors = f.errors;
    if (f.code !== undefined) this.code = f.code;
  }

  get transient(): boolean {
    return this.errorClass === "transient";
  }

  get permanent(): boolean {
    return this.errorClass === "permanent";
  }
}

/** A POST or DELETE that was sent and never answered: observe Proxmox before doing anything again. */
export class OutcomeUnknown extends ProxmoxError {
  override name = "OutcomeUnknown";
}

/** 401: the endpoint refused the token (wrong id or secret, expired, or deleted). */
export class ProxmoxAuthError extends ProxmoxError {
  override name = "ProxmoxAuthError";
}

/** 403: the token lacks a privilege; `privileges` and `aclPath` say which and where. */
export class ProxmoxPermissionError extends ProxmoxError {
  override name = "ProxmoxPermissionError";
  readonly aclPath?: string;
  readonly privileges: string[];

  constructor(f: ProxmoxErrorFields, denial: PermissionDenial) {
    super(f);
    if (denial.aclPath !== undefined) this.aclPath = denial.aclPath;
    this.privileges = denial.privileges;
  }
}

/** The endpoint runs a Proxmox VE without what the operator needs (OCI containers came with 9.1). */
export class ProxmoxVersionError extends ProxmoxError {
  override name = "ProxmoxVersionError";
  readonly version: string;

  constructor(f: ProxmoxErrorFields, version: string) {
    super(f);
    this.version = version;
  }
}

const CLASS_WORDS: Record<ErrorClass, string> = {
  transient: "transient",
  permanent: "permanent",
  "outcome-unknown": "outcome unknown",
  cancelled: "cancelled",
};

function paramList(errors: Record<string, string> | undefined): string {
  if (!errors || Object.keys(errors).length === 0) return "";
  return ` (${Object.entries(errors)
    .map(([k, v]) => `${k}: ${v}`)
    .join("; ")})`;
}

function networkText(f: Extract<Failure, { type: "network" }>, c: Classification, detail: string): string {
  if (c.reason === "tls-untrusted")
    return `the server's TLS certificate is not trusted (${f.code}): give this endpoint the CA bundle that signed it, or enable insecure mode for it explicitly`;
  if (c.reason === "tls") return `TLS failed (${f.code ?? detail})`;
  if (c.reason === "cancelled") return "cancelled by the caller";
  if (c.reason === "timeout")
    return f.sent ? "no answer before the timeout" : "could not connect before the timeout";
  if (c.reason === "malformed-response") return `the answer was not Proxmox's JSON (${detail})`;
  return `${f.sent ? "connection lost" : "could not connect"} (${f.code ?? detail})`;
}

/** The error the caller sees for a failure of a call. `detail` is the transport's own text, if any. */
export function proxmoxError(
  ctx: CallContext,
  failure: Failure,
  extra: { errors?: Record<string, string>; detail?: string; cause?: unknown } = {},
): ProxmoxError {
  const c = classify(ctx.method, failure, ctx.repeatable);
  const call = `${ctx.method} ${ctx.path}`;
  const base = { ...ctx, ...c, cause: extra.cause };
  if (failure.type === "network") {
    const text = networkText(failure, c, extra.detail ?? "");
    const fields = { ...base, code: failure.code, message: "" };
    if (c.errorClass === "outcome-unknown")
      return new OutcomeUnknown({
        ...fields,
        message: `${call} at ${ctx.endpoint}: outcome unknown, ${text}; not repeated: look at Proxmox to see whether it happened`,
      });
    return new ProxmoxError({
      ...fields,
      message: `${call} at ${ctx.endpoint}: ${text} (${CLASS_WORDS[c.errorClass]})`,
    });
  }
  const pve = failure.message.replace(/\s+$/, "");
  const fields = { ...base, status: failure.status, pveMessage: pve, errors: extra.errors, message: "" };
  if (c.reason === "unauthorized")
    return new ProxmoxAuthError({
      ...fields,
      message: `Proxmox at ${ctx.endpoint} refused API token ${ctx.tokenId} (401 ${pve}) on ${call}: check the token id and secret`,
    });
  if (c.reason === "forbidden") {
    const denial = parsePermissionDenial(pve);
    const what = denial.privileges.length
      ? `lacks privilege ${denial.privileges.join(" or ")} on ${denial.aclPath}`
      : "is not allowed to do this";
    return new ProxmoxPermissionError(
      { ...fields, message: `API token ${ctx.tokenId} ${what}: ${call} answered 403 ${pve}` },
      denial,
    );
  }
  return new ProxmoxError({
    ...fields,
    message: `${call}: ${failure.status} ${pve}${paramList(extra.errors)} (${CLASS_WORDS[c.errorClass]})`,
  });
}

export function isProxmoxError(e: unknown): e is ProxmoxError {
  return e instanceof ProxmoxError;
}
