import { describe, expect, it } from "vitest";
import { isValidReason, setCondition, type Condition } from "../../src/runtime/conditions.js";
import { desiredStatus, statusPatch } from "../../src/runtime/status.js";
import type { KubeObject } from "../../src/runtime/resource.js";

const t0 = new Date("2026-01-01T00:00:00.123Z");
const t1 = new Date("2026-01-01T00:05:00Z");

const ready = (status: Condition["status"], reason = "Ready", message = "") => ({
  type: "Ready",
  status,
  reason,
  message,
});

describe("setCondition", () => {
  it("adds a new condition stamped to the second, with the generation", () => {
    expect(setCondition([], ready("True"), 3, t0)).toEqual([
      { ...ready("True"), lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 3 },
    ]);
  });

  it.each([
    ["same status, same reason", ready("True"), "2026-01-01T00:00:00Z"],
    ["same status, new reason and message", ready("True", "StillFine", "all good"), "2026-01-01T00:00:00Z"],
    ["status flips", ready("False", "Down"), "2026-01-01T00:05:00Z"],
    ["status goes Unknown", ready("Unknown", "Probing"), "2026-01-01T00:05:00Z"],
  ])("%s: lastTransitionTime %s", (_name, update, expected) => {
    const before = setCondition([], ready("True"), 1, t0);
    const after = setCondition(before, update, 2, t1);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ ...update, lastTransitionTime: expected, observedGeneration: 2 });
  });

  it("leaves the other conditions and their order alone", () => {
    let list = setCondition([], ready("True"), 1, t0);
    list = setCondition(list, { type: "Reconciling", status: "False", reason: "Done", message: "" }, 1, t0);
    list = setCondition(list, ready("False", "Down"), 1, t1);
    expect(list.map((c) => c.type)).toEqual(["Ready", "Reconciling"]);
    expect(list[1]?.lastTransitionTime).toBe("2026-01-01T00:00:00Z");
  });

  it("refuses a reason the API server would reject", () => {
    expect(() => setCondition([], ready("True", "not valid!"), 1, t0)).toThrow(/invalid condition reason/);
    expect(isValidReason("Synced")).toBe(true);
    expect(isValidReason("Rolling_Update:ldap1")).toBe(true);
    expect(isValidReason("1Bad")).toBe(false);
    expect(isValidReason("Bad_")).toBe(true);
    expect(isValidReason("Bad,")).toBe(false);
  });
});

describe("status patch", () => {
  const obj = (status?: Record<string, unknown>, generation = 4): KubeObject => ({
    metadata: { name: "a", namespace: "ns", generation },
    ...(status ? { status } : {}),
  });

  it("first reconcile writes conditions and observedGeneration", () => {
    const patch = statusPatch(
      obj(),
      { fields: { phase: "Pending" }, conditions: [ready("False", "Creating")] },
      t0,
    );
    expect(patch).toEqual({
      status: {
        phase: "Pending",
        observedGeneration: 4,
        conditions: [
          {
            ...ready("False", "Creating"),
            lastTransitionTime: "2026-01-01T00:00:00Z",
            observedGeneration: 4,
          },
        ],
      },
    });
  });

  it("a steady state yields no patch at all, whatever the time", () => {
    const update = { fields: { phase: "Ready" }, conditions: [ready("True")] };
    const written = desiredStatus(obj(), update, t0);
    expect(statusPatch(obj(written), update, t1)).toBeUndefined();
  });

  it("a new generation patches only observedGeneration fields", () => {
    const update = { fields: { phase: "Ready" }, conditions: [ready("True")] };
    const written = desiredStatus(obj(undefined, 4), update, t0);
    const patch = statusPatch(obj(written, 5), update, t1);
    expect(patch).toEqual({
      status: {
        observedGeneration: 5,
        conditions: [{ ...ready("True"), lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 5 }],
      },
    });
  });

  it("removes a field set to undefined with a null in the merge patch", () => {
    const written = desiredStatus(obj(), { fields: { pendingTask: "UPID:x", phase: "Ready" } }, t0);
    expect(statusPatch(obj(written), { fields: { pendingTask: undefined } }, t1)).toEqual({
      status: { pendingTask: null },
    });
  });
});
