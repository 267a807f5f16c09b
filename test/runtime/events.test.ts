import { describe, expect, it } from "vitest";
import { EventFilter, type EventSpec } from "../../src/runtime/events.js";
import type { KubeObject } from "../../src/runtime/resource.js";

const obj = (uid: string): KubeObject => ({ metadata: { name: uid, namespace: "ns", uid } });
const ev = (reason = "Synced", note = "realm synced"): EventSpec => ({
  type: "Normal",
  reason,
  action: "Sync",
  note,
});

describe("EventFilter", () => {
  it("suppresses an identical event within the window, lets it through after", () => {
    const f = new EventFilter({ dedupWindowMs: 60_000 });
    expect(f.admit(obj("a"), ev(), 0)).toBe(true);
    expect(f.admit(obj("a"), ev(), 59_999)).toBe(false);
    expect(f.admit(obj("a"), ev(), 60_000)).toBe(true);
  });

  it("does not confuse different objects, reasons or notes", () => {
    const f = new EventFilter();
    expect(f.admit(obj("a"), ev(), 0)).toBe(true);
    expect(f.admit(obj("b"), ev(), 0)).toBe(true);
    expect(f.admit(obj("a"), ev("Failed"), 0)).toBe(true);
    expect(f.admit(obj("a"), ev("Synced", "other"), 0)).toBe(true);
  });

  it("caps distinct events per object so a flapping loop cannot flood the API", () => {
    const f = new EventFilter({ perObject: { burst: 3, qps: 1 / 300 } });
    const admitted = Array.from({ length: 10 }, (_, i) => f.admit(obj("a"), ev("Flap", `n${i}`), i)).filter(
      Boolean,
    );
    expect(admitted).toHaveLength(3);
    expect(f.admit(obj("a"), ev("Flap", "later"), 300_000)).toBe(true);
  });

  it("stays bounded in memory", () => {
    const f = new EventFilter({ maxEntries: 10 });
    for (let i = 0; i < 1000; i++) f.admit(obj(`o${i}`), ev(), 0);
    // The first object was evicted, so the same event is admitted again.
    expect(f.admit(obj("o0"), ev(), 1)).toBe(true);
  });
});
