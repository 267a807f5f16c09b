/**
 * Which calls are repeated, and how. Only what is safe to repeat: reads, and PUTs of configuration (a PUT
 * sets values; sending it twice leaves the same state, unless it carries a digest: see isRepeatable). A
 * POST or DELETE (create, start, stop, shutdown, delete, pull, sync, realm create) is sent once: when its
 * outcome is unknown the caller observes Proxmox.
 */
import pRetry from "p-retry";
import { isNonIdempotent, ProxmoxError, proxmoxError, type CallContext } from "./errors.js";
import type { Params } from "./form.js";

export interface RetryPolicy {
  /** Repeats after the first attempt (0: none). */
  retries: number;
  /** Delay before the first repeat; each next one is `factor` times longer, up to `maxTimeoutMs`. */
  minTimeoutMs: number;
  maxTimeoutMs: number;
  factor: number;
  /** Randomise each delay (x1 to x2) so clients that failed together do not retry together. */
  jitter: boolean;
  /** Give up repeating once this much time has passed since the first attempt. */
  maxRetryTimeMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  retries: 4,
  minTimeoutMs: 250,
  maxTimeoutMs: 4_000,
  factor: 2,
  jitter: true,
  maxRetryTimeMs: 30_000,
};

/** The configuration PUTs the operator makes: container config, realm, node DNS. */
const CONFIG_PUTS = [
  /^\/nodes\/[^/]+\/lxc\/[^/]+\/config$/,
  /^\/access\/domains\/[^/]+$/,
  /^\/nodes\/[^/]+\/dns$/,
];

/** Whether a call may be repeated after a transient failure (path below /api2/json). */
export function isRetryable(method: string, path: string): boolean {
  const m = method.toUpperCase();
  if (m === "GET") return true;
  if (m === "PUT") return CONFIG_PUTS.some((re) => re.test(path));
  return false;
}

/**
 * Whether sending the call twice leaves the state sending it once would. Not a POST or DELETE; nor a PUT
 * against a `digest`: if the first one was applied, it changed the digest, and the repeat is refused as
 * `detected modified configuration` though nobody else changed anything. Such a PUT is still repeated
 * after an answer that says it was not applied (a 5xx, a lock timeout), never after a lost answer.
 */
export function isRepeatable(method: string, params: Params | undefined): boolean {
  if (isNonIdempotent(method)) return false;
  return !(method.toUpperCase() === "PUT" && params?.["digest"] !== undefined);
}

/** Runs `attempt` and repeats it on transient ProxmoxErrors, within the policy; stops when `signal` fires. */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  ctx: CallContext,
  signal?: AbortSignal,
): Promise<T> {
  try {
    return await pRetry(attempt, {
      retries: policy.retries,
      factor: policy.factor,
      minTimeout: policy.minTimeoutMs,
      maxTimeout: policy.maxTimeoutMs,
      randomize: policy.jitter,
      maxRetryTime: policy.maxRetryTimeMs,
      signal,
      unref: true,
      shouldRetry: ({ error }) => error instanceof ProxmoxError && error.transient && !signal?.aborted,
    });
  } catch (e) {
    // Cancelled while waiting between attempts: say so in the client's own terms.
    if (!(e instanceof ProxmoxError) && signal?.aborted)
      throw proxmoxError(ctx, { type: "network", sent: false, cancelled: true });
    throw e;
  }
}
