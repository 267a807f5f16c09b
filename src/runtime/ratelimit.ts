/**
 * Rate limiting for the workqueue, as pure functions of time so that the
 * growth, cap and reset of backoff can be checked without waiting.
 */

export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

/** controller-runtime's defaults: 5 ms doubling up to 1000 s. */
export const defaultBackoff: BackoffPolicy = { baseDelayMs: 5, maxDelayMs: 1_000_000 };

/** Delay before the retry that follows `failures` consecutive failures (1-based). */
export function backoffDelay(failures: number, policy: BackoffPolicy = defaultBackoff): number {
  if (failures <= 0) return 0;
  // Past 2^52 the double loses integer precision; the cap is reached long before.
  const exponent = Math.min(failures - 1, 52);
  return Math.min(policy.baseDelayMs * 2 ** exponent, policy.maxDelayMs);
}

export interface BucketPolicy {
  /** Tokens refilled per second. */
  qps: number;
  burst: number;
}

/** client-go's overall limiter: 10 qps with a burst of 100. */
export const defaultBucket: BucketPolicy = { qps: 10, burst: 100 };

export interface BucketState {
  tokens: number;
  updatedAt: number;
}

export function initialBucket(policy: BucketPolicy, now: number): BucketState {
  return { tokens: policy.burst, updatedAt: now };
}

/** Tokens in the bucket at `now`: refilled at `qps` since the last update, never above the burst. */
export function refilledTokens(state: BucketState, policy: BucketPolicy, now: number): number {
  const elapsed = Math.max(0, now - state.updatedAt);
  return Math.min(policy.burst, state.tokens + (elapsed / 1000) * policy.qps);
}

/**
 * Reserves one token and tells how long the caller must wait for it. Tokens
 * may go negative: that is a queue of reservations, each served in turn, as
 * golang.org/x/time/rate does for the client-go bucket limiter.
 */
export function reserveToken(
  state: BucketState,
  policy: BucketPolicy,
  now: number,
): { state: BucketState; waitMs: number } {
  const tokens = refilledTokens(state, policy, now) - 1;
  const waitMs = tokens >= 0 ? 0 : Math.ceil((-tokens / policy.qps) * 1000);
  return { state: { tokens, updatedAt: now }, waitMs };
}

/**
 * Per-key failures combined with the global bucket: the item waits for the
 * longer of the two, as client-go's MaxOfRateLimiter does.
 */
export class RateLimiter {
  private readonly failures = new Map<string, number>();
  private bucket: BucketState;

  constructor(
    private readonly backoff: BackoffPolicy = defaultBackoff,
    private readonly bucketPolicy: BucketPolicy = defaultBucket,
    now: number = Date.now(),
  ) {
    this.bucket = initialBucket(bucketPolicy, now);
  }

  when(key: string, now: number): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const reservation = reserveToken(this.bucket, this.bucketPolicy, now);
    this.bucket = reservation.state;
    return Math.max(backoffDelay(failures, this.backoff), reservation.waitMs);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

/** Takes a token if one is available now; a refusal leaves no debt, unlike `reserveToken`. */
export function tryTakeToken(
  state: BucketState,
  policy: BucketPolicy,
  now: number,
): { state: BucketState; allowed: boolean } {
  const tokens = refilledTokens(state, policy, now);
  if (tokens < 1) return { state: { tokens, updatedAt: now }, allowed: false };
  return { state: { tokens: tokens - 1, updatedAt: now }, allowed: true };
}
