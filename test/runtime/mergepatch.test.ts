import { describe, expect, it } from "vitest";
import { deepEqual, mergePatchDiff } from "../../src/runtime/mergepatch.js";

describe("mergePatchDiff", () => {
  it.each([
    ["equal objects", { a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 2] } }, undefined],
    ["changed scalar", { a: 1 }, { a: 2 }, { a: 2 }],
    ["added field", { a: 1 }, { a: 1, b: "x" }, { b: "x" }],
    ["removed field", { a: 1, b: 2 }, { a: 1 }, { b: null }],
    ["nested change", { a: { b: 1, c: 2 } }, { a: { b: 1, c: 3 } }, { a: { c: 3 } }],
    ["arrays replace whole", { l: [1, 2, 3] }, { l: [1, 2] }, { l: [1, 2] }],
    ["undefined equals absent", { a: 1, b: undefined }, { a: 1 }, undefined],
    ["null wanted, field absent: nothing to do", { a: 1 }, { a: 1, b: null }, undefined],
    ["null wanted, nested field absent: nothing to do", { a: { c: 1 } }, { a: { c: 1, d: null } }, undefined],
    ["null wanted, field present: removed", { a: 1, b: 2 }, { a: 1, b: null }, { b: null }],
    ["null inside an array is a value", { l: [1] }, { l: [1, null] }, { l: [1, null] }],
  ])("%s", (_name, current, desired, expected) => {
    expect(mergePatchDiff(current, desired)).toEqual(expected);
  });

  it("deepEqual is order-insensitive for keys, order-sensitive for arrays", () => {
    expect(deepEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
  });
});
