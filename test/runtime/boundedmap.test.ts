import { describe, expect, it } from "vitest";
import { BoundedMap } from "../../src/runtime/boundedmap.js";

describe("BoundedMap", () => {
  it.each([
    ["under the bound keeps all", ["a", "b"], ["a", "b"], []],
    ["evicts the oldest past the bound", ["a", "b", "c", "d"], ["b", "c", "d"], ["a"]],
    ["setting again makes an entry the newest", ["a", "b", "c", "a", "d"], ["c", "a", "d"], ["b"]],
  ])("%s", (_case, sets, kept, evicted) => {
    const map = new BoundedMap<string, number>(3);
    sets.forEach((key, i) => map.set(key, i));
    for (const key of kept) expect(map.get(key)).toBeDefined();
    for (const key of evicted) expect(map.get(key)).toBeUndefined();
    expect(map.size).toBe(kept.length);
  });
});
