import { describe, expect, it } from "vitest";
import { durationMs } from "../../src/api/duration.js";

describe("durationMs", () => {
  it.each([
    ["0s", 0],
    ["45s", 45_000],
    ["10m", 600_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["59m60s", 3_600_000],
    ["1500ms", 1_500],
    ["1m1ms", 60_001],
    ["596h31m23.647s", 2 ** 31 - 1],
    ["2147483647ms", 2 ** 31 - 1],
  ])("%s = %d ms", (text, ms) => {
    expect(durationMs(text)).toBe(ms);
  });

  it.each([["5 minutes"], [""], ["10"], ["-1s"], ["1d"]])("refuses %j", (text) => {
    expect(() => durationMs(text)).toThrow(/not a duration/);
  });
});
