import { describe, expect, it } from "vitest";
import {
  backoffDelay,
  initialBucket,
  RateLimiter,
  refilledTokens,
  reserveToken,
  tryTakeToken,
  type BucketPolicy,
} from "../../src/runtime/ratelimit.js";

describe("backoffDelay", () => {
  it.each([
    [0, 0],
    [1, 5],
    [2, 10],
    [3, 20],
    [10, 2560],
    [18, 655_360],
    [19, 1_000_000],
    [60, 1_000_000],
    [5000, 1_000_000],
  ])("after %i failures waits %i ms (5 ms doubling, capped at 1000 s)", (failures, expected) => {
    expect(backoffDelay(failures)).toBe(expected);
  });

  it("honours a custom policy", () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

describe("token bucket", () => {
  const policy: BucketPolicy = { qps: 10, burst: 3 };

  it("serves a burst at once, then one token per 1/qps", () => {
    let state = initialBucket(policy, 0);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = reserveToken(state, policy, 0);
      state = r.state;
      waits.push(r.waitMs);
    }
    expect(waits).toEqual([0, 0, 0, 100, 200, 300]);
  });

  it("refills with time, never beyond the burst", () => {
    let state = initialBucket(policy, 0);
    for (let i = 0; i < 3; i++) state = reserveToken(state, policy, 0).state;
    expect(reserveToken(state, policy, 100).waitMs).toBe(0);
    const later = reserveToken(state, policy, 60_000);
    expect(later.state.tokens).toBe(2);
  });

  it.each([
    ["no time passed", { tokens: 1, updatedAt: 0 }, 0, 1],
    ["refills at qps", { tokens: 0, updatedAt: 0 }, 150, 1.5],
    ["a debt is paid back first", { tokens: -2, updatedAt: 0 }, 100, -1],
    ["capped at the burst", { tokens: 2, updatedAt: 0 }, 60_000, 3],
    ["a clock going back refills nothing", { tokens: 1, updatedAt: 500 }, 0, 1],
  ])("refilledTokens: %s", (_case, state, now, tokens) => {
    expect(refilledTokens(state, policy, now)).toBeCloseTo(tokens, 9);
  });

  it("reserveToken and tryTakeToken agree on the refill", () => {
    const state = { tokens: 0.5, updatedAt: 0 };
    expect(reserveToken(state, policy, 50).state.tokens).toBeCloseTo(0, 9);
    expect(tryTakeToken(state, policy, 50).state.tokens).toBeCloseTo(0, 9);
  });

  it("tryTakeToken refuses without running into debt", () => {
    let state = initialBucket({ qps: 1, burst: 1 }, 0);
    const first = tryTakeToken(state, { qps: 1, burst: 1 }, 0);
    state = first.state;
    const second = tryTakeToken(state, { qps: 1, burst: 1 }, 500);
    expect([first.allowed, second.allowed]).toEqual([true, false]);
    expect(tryTakeToken(second.state, { qps: 1, burst: 1 }, 1000).allowed).toBe(true);
  });
});

describe("RateLimiter", () => {
  it("waits for the longer of the key's backoff and the global bucket", () => {
    const limiter = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1000 }, { qps: 10, burst: 2 }, 0);
    // Different keys: no per-key backoff beyond 5 ms, but the bucket runs dry.
    expect(["a", "b", "c", "d"].map((k) => limiter.when(k, 0))).toEqual([5, 5, 100, 200]);
  });

  it("resets one key's backoff on forget, leaving the others", () => {
    const limiter = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1000 }, { qps: 1000, burst: 1000 }, 0);
    limiter.when("a", 0);
    limiter.when("a", 0);
    limiter.when("b", 0);
    limiter.forget("a");
    expect(limiter.when("a", 0)).toBe(5);
    expect(limiter.when("b", 0)).toBe(10);
  });
});
