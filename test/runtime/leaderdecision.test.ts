import { describe, expect, it } from "vitest";
import {
  decide,
  defaultTiming,
  nextRecord,
  observe,
  releasedRecord,
  renewalExpired,
  validateTiming,
  type LeaseRecord,
  type Observation,
} from "../../src/runtime/leaderdecision.js";

const me = "pod-a";
const rec = (over: Partial<LeaseRecord> = {}): LeaseRecord => ({
  holderIdentity: "pod-b",
  leaseDurationSeconds: 15,
  acquireTime: 1_000,
  renewTime: 1_000,
  leaseTransitions: 2,
  ...over,
});
const seen = (record: LeaseRecord, observedAt: number): Observation => ({ record, observedAt });

describe("decide", () => {
  it.each<[string, Observation | undefined, number, string]>([
    ["no lease yet", undefined, 0, "create"],
    ["we hold it", seen(rec({ holderIdentity: me }), 0), 100_000, "renew"],
    ["released (empty holder)", seen(rec({ holderIdentity: "" }), 50_000), 50_000, "acquire"],
    ["other holder, seen changing 14.999 s ago", seen(rec(), 10_000), 24_999, "wait"],
    ["other holder, unchanged for exactly the lease duration", seen(rec(), 10_000), 25_000, "acquire"],
    ["other holder, unchanged for longer", seen(rec(), 10_000), 90_000, "acquire"],
    // Remote times are ignored: a renewTime far in the past (skewed clock) does not make it expired...
    [
      "remote renewTime ancient but just seen changing",
      seen(rec({ renewTime: -1e9 }), 100_000),
      100_001,
      "wait",
    ],
    // ...and one far in the future does not keep it alive.
    [
      "remote renewTime in the future but long unchanged",
      seen(rec({ renewTime: 1e12 }), 0),
      16_000,
      "acquire",
    ],
    ["short lease of one second", seen(rec({ leaseDurationSeconds: 1 }), 0), 1_000, "acquire"],
  ])("%s -> %s", (_name, observation, now, action) => {
    expect(decide(me, observation, now).action).toBe(action);
  });

  it("tells how long until a held lease expires", () => {
    expect(decide(me, seen(rec(), 10_000), 20_000)).toEqual({
      action: "wait",
      holder: "pod-b",
      expiresInMs: 5_000,
    });
  });
});

describe("observe", () => {
  it("keeps the first observation time while the record is unchanged", () => {
    const first = observe(undefined, rec(), 5_000);
    expect(observe(first, rec(), 9_000).observedAt).toBe(5_000);
  });

  it("restarts the clock when the holder renews", () => {
    const first = observe(undefined, rec(), 5_000);
    expect(observe(first, rec({ renewTime: 2_000 }), 9_000).observedAt).toBe(9_000);
  });
});

describe("records written", () => {
  const timing = defaultTiming;

  it("creating: holder is us, no transitions", () => {
    expect(nextRecord(me, undefined, timing, 7)).toEqual({
      holderIdentity: me,
      leaseDurationSeconds: 15,
      acquireTime: 7,
      renewTime: 7,
      leaseTransitions: 0,
    });
  });

  it("taking over counts a transition and sets acquireTime", () => {
    expect(nextRecord(me, rec(), timing, 9)).toMatchObject({
      holderIdentity: me,
      acquireTime: 9,
      leaseTransitions: 3,
    });
  });

  it("renewing keeps acquireTime and transitions", () => {
    const held = rec({ holderIdentity: me, acquireTime: 4 });
    expect(nextRecord(me, held, timing, 9)).toEqual({ ...held, renewTime: 9 });
  });

  it("release empties the holder and shortens the lease", () => {
    expect(releasedRecord(rec({ holderIdentity: me }), 50)).toMatchObject({
      holderIdentity: "",
      leaseDurationSeconds: 1,
    });
  });
});

describe("timing", () => {
  it.each([
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, undefined],
    [{ leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, /lease duration/],
    [{ leaseDurationMs: 15_000, renewDeadlineMs: 2_400, retryPeriodMs: 2_000 }, /1.2/],
  ])("validates %o", (timing, problem) => {
    const result = validateTiming(timing);
    if (problem) expect(result).toMatch(problem);
    else expect(result).toBeUndefined();
  });

  it.each([
    [0, 9_999, false],
    [0, 10_000, true],
    [5_000, 12_000, false],
  ])("last renewed at %i, now %i: expired %s", (last, now, expired) => {
    expect(renewalExpired(last, now, defaultTiming)).toBe(expired);
  });
});
