// Consecutive passes for the verify gate: a failure or a new address starts over.
import { describe, expect, it } from "vitest";
import { NO_STREAK, recordProbe, streakSatisfied, type PassStreak } from "../../src/health/pass-streak.js";

const A = "10.0.0.11:636";
const B = "10.0.0.12:636";

describe("recordProbe", () => {
  it.each<[string, PassStreak, string, boolean, PassStreak]>([
    ["first pass", NO_STREAK, A, true, { address: A, passes: 1 }],
    ["another pass", { address: A, passes: 2 }, A, true, { address: A, passes: 3 }],
    ["a failure starts over", { address: A, passes: 5 }, A, false, { address: A, passes: 0 }],
    ["a pass after a failure", { address: A, passes: 0 }, A, true, { address: A, passes: 1 }],
    [
      "a pass on a new address does not inherit",
      { address: A, passes: 4 },
      B,
      true,
      { address: B, passes: 1 },
    ],
    ["a failure on a new address", { address: A, passes: 4 }, B, false, { address: B, passes: 0 }],
  ])("%s", (_name, before, address, healthy, after) => {
    expect(recordProbe(before, address, healthy)).toEqual(after);
  });
});

describe("streakSatisfied", () => {
  it.each<[string, PassStreak, string, number, boolean]>([
    ["enough passes", { address: A, passes: 3 }, A, 3, true],
    ["more than enough", { address: A, passes: 4 }, A, 3, true],
    ["one short", { address: A, passes: 2 }, A, 3, false],
    ["passes seen on another address", { address: B, passes: 3 }, A, 3, false],
    ["no probe yet", NO_STREAK, A, 1, false],
    ["a requirement of zero still needs one pass", { address: A, passes: 0 }, A, 0, false],
  ])("%s", (_name, streak, address, required, satisfied) => {
    expect(streakSatisfied(streak, address, required)).toBe(satisfied);
  });

  it("three probes in a row, one failing in the middle, do not satisfy three", () => {
    let s = NO_STREAK;
    for (const healthy of [true, false, true]) s = recordProbe(s, A, healthy);
    expect(streakSatisfied(s, A, 3)).toBe(false);
    for (const healthy of [true, true]) s = recordProbe(s, A, healthy);
    expect(streakSatisfied(s, A, 3)).toBe(true);
  });
});
