/**
 * One HTTPS request to one Proxmox endpoint, and nothing more: the endpoint's own TLS trust (a CA bundle,
 * or insecure mode for this endpoint only), keep-alive connections, a timeout on every request,
 * cancellation through an AbortSignal, and every failure turned into a classified ProxmoxError.
 * Retries are the engine's business (engine.ts).
 */
import { Agent, request } from "node:https";
import type { IncomingMessage } from "node:http";
import { proxmoxError, type CallContext, type Failure } from "./errors.js";
import { encodeParams, paramsInQuery, type Params } from "./form.js";

export interface TlsOptions {
  /** PEM bundle of the CA(s) that signed the API certificate; replaces the system's roots for this endpoint. */
  ca?: string;
  /** Accept any certificate from this endpoint. Explicit; never implied, never process-wide. */
  insecure?: boolean;
}

export interface TransportOptions {
  /** `https://host:8006`, with or without `/api2/json`. */
  endpoint: string;
  /** `user@realm!name` */
  tokenId: string;
  tokenSecret: string;
  tls?: TlsOptions;
  /** Per request, from sending to the last byte of the answer (default 20 s). */
  timeoutMs?: number;
  /** Connections kept to this endpoint (default 16). */
  maxSockets?: number;
}

export interface RequestSpec {
  method: string;
  /** Below /api2/json, e.g. `/nodes/pve1/lxc`. */
  path: string;
  params?: Params;
  /** Whether it may be sent twice to the effect of once (default: not a POST or DELETE); see retry.ts. */
  repeatable?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
}

type FailureExtra = { errors?: Record<string, string>; detail?: string; cause?: unknown };

export class ProxmoxConfigError extends Error {
  override name = "ProxmoxConfigError";
}

const TOKEN_ID_RE = /^[^\s@!=]+@[^\s@!=]+![A-Za-z][A-Za-z0-9._-]*$/;
/** What an HTTP header value can carry as it is; Proxmox's secrets are UUIDs. */
const TOKEN_SECRET_RE = /^[\x21-\x7e]+$/;

/**
 * A refused token id as an error may quote it: cut at the first `=`, because a
 * pasted `user@realm!name=SECRET` (or the whole header value) has the secret after it.
 */
function quotedTokenId(tokenId: string): string {
  const eq = tokenId.indexOf("=");
  if (eq < 0) return JSON.stringify(tokenId.slice(0, 200));
  return `${JSON.stringify(tokenId.slice(0, Math.min(eq, 200)))} and more after '=' (the secret goes in its own field)`;
}

/** A refused endpoint as an error may quote it: anything before an `@` could be credentials. */
function quotedEndpoint(endpoint: string): string {
  return JSON.stringify(endpoint.slice(0, 200).replace(/^([^/]*\/\/)?[^/]*@/, "$1***@"));
}

/** `https://host:port` from what a user wrote; refuses credentials in the URL and other schemes. */
export function endpointOrigin(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ProxmoxConfigError(`Proxmox endpoint is not a URL: ${quotedEndpoint(endpoint)}`);
  }
  if (url.protocol !== "https:")
    throw new ProxmoxConfigError(`Proxmox endpoint must be https://, got ${url.protocol}`);
  if (url.username || url.password)
    throw new ProxmoxConfigError("Proxmox endpoint must not carry credentials");
  const path = url.pathname.replace(/\/+$/, "");
  if (path !== "" && path !== "/api2/json")
    throw new ProxmoxConfigError(
      `Proxmox endpoint must be https://host:port (optionally /api2/json), got path ${path}`,
    );
  return url.origin;
}

export class Transport {
  readonly endpoint: string;
  readonly tokenId: string;
  readonly timeoutMs: number;
  // Private fields: not enumerable, not in JSON.stringify or util.inspect of the transport.
  readonly #secret: string;
  readonly #authorization: string;
  readonly #agent: Agent;

  constructor(o: TransportOptions) {
    this.endpoint = endpointOrigin(o.endpoint);
    if (!TOKEN_ID_RE.test(o.tokenId))
      throw new ProxmoxConfigError(
        `API token id must look like user@realm!name, got ${quotedTokenId(o.tokenId)}`,
      );
    if (!TOKEN_SECRET_RE.test(o.tokenSecret))
      throw new ProxmoxConfigError(
        `API token secret of ${o.tokenId} is empty or has characters other than visible ASCII`,
      );
    if (o.tls?.ca && o.tls.insecure)
      throw new ProxmoxConfigError(
        "give either a CA bundle or insecure mode for a Proxmox endpoint, not both",
      );
    this.tokenId = o.tokenId;
    this.timeoutMs = o.timeoutMs ?? 20_000;
    this.#secret = o.tokenSecret;
    this.#authorization = `PVEAPIToken=${o.tokenId}=${o.tokenSecret}`;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: o.maxSockets ?? 16,
      scheduling: "lifo",
      ...(o.tls?.ca ? { ca: o.tls.ca } : {}),
      rejectUnauthorized: !o.tls?.insecure,
    });
  }

  /** Closes the kept connections; requests after this open new ones. */
  close(): void {
    this.#agent.destroy();
  }

  /** Proxmox never echoes a token secret; this keeps it so even if a proxy in between did. */
  private scrub(text: string): string {
    return text.split(this.#secret).join("***");
  }

  private context(method: string, path: string, repeatable: boolean | undefined): CallContext {
    return {
      method,
      path,
      endpoint: this.endpoint,
      tokenId: this.tokenId,
      ...(repeatable !== undefined ? { repeatable } : {}),
    };
  }

  /** Sends the request and resolves with the answer's `data`; rejects with a ProxmoxError. */
  request(spec: RequestSpec): Promise<unknown> {
    const method = spec.method.toUpperCase();
    const ctx = this.context(method, spec.path, spec.repeatable);
    const encoded = encodeParams(spec.params);
    const inQuery = paramsInQuery(method);
    const url = `${this.endpoint}/api2/json${spec.path}${inQuery && encoded ? `?${encoded}` : ""}`;
    const body = inQuery ? undefined : encoded;
    const headers: Record<string, string> = {
      Authorization: this.#authorization,
      Accept: "application/json",
    };
    if (body !== undefined) {
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    const timeoutMs = spec.timeoutMs ?? this.timeoutMs;
    const signal = spec.signal;

    return new Promise((resolve, reject) => {
      if (signal?.aborted)
        return reject(proxmoxError(ctx, { type: "network", sent: false, cancelled: true }));
      // Whether the request may have reached Proxmox: from the moment the connection is up.
      let sent = false;
      let settled = false;
      const req = request(url, { method, headers, agent: this.#agent });
      const settle = () => {
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      // `answered`: the whole answer was read, so the connection can serve the next request.
      const fail = (failure: Failure, extra: FailureExtra = {}, answered = false) => {
        if (settled) return;
        settle();
        if (!answered) req.destroy();
        reject(proxmoxError(ctx, failure, extra));
      };
      const onAbort = () => fail({ type: "network", sent, cancelled: true });
      const timer = setTimeout(() => fail({ type: "network", sent, timedOut: true }), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });

      req.on("socket", (socket) => {
        if (req.reusedSocket) return void (sent = true);
        // The socket outlives the request in the pool: take the listener off when the request ends,
        // or every request on a socket that was handed over before its handshake leaves one behind.
        const onSecureConnect = () => (sent = true);
        socket.once("secureConnect", onSecureConnect);
        req.once("close", () => socket.off("secureConnect", onSecureConnect));
      });
      req.on("error", (e: NodeJS.ErrnoException) =>
        fail({ type: "network", sent, code: e.code }, { detail: this.scrub(e.message), cause: e }),
      );
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (e: NodeJS.ErrnoException) =>
          fail(
            { type: "network", sent: true, code: e.code ?? "ECONNRESET" },
            { detail: e.message, cause: e },
          ),
        );
        res.on("aborted", () =>
          fail({ type: "network", sent: true, code: "ECONNRESET" }, { detail: "answer cut off" }),
        );
        res.on("end", () => {
          if (settled) return;
          const outcome = this.interpret(res, Buffer.concat(chunks).toString("utf8"));
          if (outcome.ok) {
            settle();
            resolve(outcome.data);
          } else fail(outcome.failure, outcome.extra, true);
        });
      });
      req.end(body);
    });
  }

  private interpret(
    res: IncomingMessage,
    text: string,
  ): { ok: true; data: unknown } | { ok: false; failure: Failure; extra: FailureExtra } {
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const status = res.statusCode ?? 0;
    const obj = parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : undefined;
    if (status === 200) {
      if (obj && "data" in obj) return { ok: true, data: obj["data"] };
      return {
        ok: false,
        failure: { type: "network", sent: true, malformed: true },
        extra: { detail: `content-type ${res.headers["content-type"] ?? "none"}, ${text.length} bytes` },
      };
    }
    const message = typeof obj?.["message"] === "string" ? obj["message"] : (res.statusMessage ?? "");
    return {
      ok: false,
      failure: { type: "response", status, message: this.scrub(message) },
      extra: { errors: this.paramErrors(obj?.["errors"]) },
    };
  }

  private paramErrors(raw: unknown): Record<string, string> | undefined {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw as Record<string, unknown>))
      out[k] = this.scrub(typeof v === "string" ? v.replace(/\s+$/, "") : JSON.stringify(v));
    return out;
  }
}
