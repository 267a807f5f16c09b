/**
 * The request engine behind proxmox-api's typed proxy (its `ApiRequestable`): the proxy turns
 * `api.nodes.$(node).lxc.$post(params)` into a method, a path and parameters; the engine sends them
 * through the endpoint's transport, repeating only what is safe to repeat.
 */
import type { ApiRequestable } from "proxmox-api";
import type { Params } from "./form.js";
import { isRepeatable, isRetryable, withRetries, type RetryPolicy } from "./retry.js";
import type { Transport } from "./transport.js";

/** Per call: cancellation and, when a call needs another bound than the client's default, its timeout. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

const API_PREFIX = "/api2/json";

export class RequestEngine {
  constructor(
    private readonly transport: Transport,
    private readonly retry: RetryPolicy,
  ) {}

  /** `path` as the proxy builds it (with /api2/json) or below it. */
  call(method: string, path: string, params: Params | undefined, opts: CallOptions = {}): Promise<unknown> {
    const m = method.toUpperCase();
    const below = path.startsWith(API_PREFIX) ? path.slice(API_PREFIX.length) : path;
    const repeatable = isRepeatable(m, params);
    const once = () =>
      this.transport.request({
        method: m,
        path: below,
        params,
        repeatable,
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
      });
    if (!isRetryable(m, below) || this.retry.retries <= 0) return once();
    const ctx = {
      method: m,
      path: below,
      endpoint: this.transport.endpoint,
      tokenId: this.transport.tokenId,
      repeatable,
    };
    return withRetries(once, this.retry, ctx, opts.signal);
  }

  /** An ApiRequestable for proxmox-api whose calls carry these options. */
  bind(opts: CallOptions = {}): ApiRequestable {
    return {
      doRequest: (method: string, path: string, _template: string, params?: Record<string, unknown>) =>
        this.call(method, path, params as Params | undefined, opts),
    };
  }
}
