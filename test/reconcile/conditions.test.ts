import { describe, expect, it } from "vitest";
import {
  kstatus,
  kstatusViolations,
  pairConditions,
  type Assessment,
  type KStatus,
} from "../../src/reconcile/conditions.js";
import { setConditions } from "../../src/runtime/conditions.js";

const NOW = new Date("2026-12-01T10:00:00Z");
const READY = { reason: "Ready", message: "both servers serve, realm synced" };
const WORK = { reason: "CreatingContainer", message: "creating ldap2" };
const STUCK = { reason: "SecretNotFound", message: "Secret ldap/manager-db not found" };

const statusOf = (conditions: ReturnType<typeof pairConditions>, type: string) =>
  conditions.find((c) => c.type === type)?.status;

describe("pairConditions", () => {
  it.each<[string, Assessment, Record<string, string | undefined>, KStatus]>([
    ["converged", { ready: READY }, { Ready: "True", Reconciling: "False", Stalled: "False" }, "Current"],
    [
      "working",
      { ready: undefined, progressing: WORK },
      { Ready: "False", Reconciling: "True", Stalled: "False" },
      "InProgress",
    ],
    [
      "stalled",
      { ready: undefined, stalled: STUCK },
      { Ready: "False", Reconciling: "False", Stalled: "True" },
      "Failed",
    ],
    [
      "converged parts but stalled on something else (a foreign realm)",
      {
        ready: READY,
        stalled: { reason: "RealmConflict", message: "x" },
        conflict: { reason: "RealmConflict", message: "x" },
      },
      { Ready: "False", Reconciling: "False", Stalled: "True", Conflict: "True" },
      "Failed",
    ],
    [
      "stalled while also progressing: Stalled wins, never both",
      { ready: undefined, progressing: WORK, stalled: STUCK },
      { Ready: "False", Reconciling: "False", Stalled: "True" },
      "Failed",
    ],
    [
      "database and realm reported",
      {
        ready: undefined,
        progressing: WORK,
        database: { ok: false, reason: "DatabaseUnreachable", message: "down" },
        realm: { status: "False", reason: "SyncFailed", message: "x" },
      },
      { DatabaseReachable: "False", RealmSynced: "False", Conflict: "False" },
      "InProgress",
    ],
    [
      "nothing about the database this time: the condition is left alone",
      { ready: READY },
      { DatabaseReachable: undefined, RealmSynced: undefined },
      "Current",
    ],
  ])("%s", (_what, assessment, expected, kstatusWanted) => {
    const updates = pairConditions(assessment);
    for (const [type, status] of Object.entries(expected)) expect(statusOf(updates, type), type).toBe(status);
    const conditions = setConditions([], updates, 4, NOW);
    expect(kstatusViolations(conditions, 4)).toEqual([]);
    expect(kstatus(conditions, { generation: 4, observedGeneration: 4, deleting: false })).toBe(
      kstatusWanted,
    );
    expect(updates.find((c) => c.type === "Ready")?.reason).toBe(
      assessment.stalled?.reason ??
        (assessment.ready ? "Ready" : (assessment.progressing?.reason ?? "Progressing")),
    );
  });
});

describe("kstatus and its invariants", () => {
  const c = (type: string, status: "True" | "False", observedGeneration = 2) => ({
    type,
    status,
    observedGeneration,
  });

  it.each<[string, ReturnType<typeof c>[], string[]]>([
    ["none broken", [c("Ready", "True"), c("Stalled", "False")], []],
    ["no Ready", [c("Stalled", "False")], ["Ready is missing"]],
    [
      "Ready while Stalled",
      [c("Ready", "True"), c("Stalled", "True")],
      ["Ready is True while Stalled is True"],
    ],
    [
      "Reconciling and Stalled",
      [c("Ready", "False"), c("Reconciling", "True"), c("Stalled", "True")],
      ["Reconciling and Stalled are both True"],
    ],
    ["Ready for an older generation", [c("Ready", "True", 1)], ["Ready is True for an older generation"]],
  ])("%s", (_what, conditions, violations) => {
    expect(kstatusViolations(conditions, 2)).toEqual(violations);
  });

  it.each<
    [
      string,
      ReturnType<typeof c>[],
      { generation: number; observedGeneration?: number; deleting: boolean },
      KStatus,
    ]
  >([
    [
      "deleting",
      [c("Ready", "True")],
      { generation: 2, observedGeneration: 2, deleting: true },
      "Terminating",
    ],
    [
      "a newer generation",
      [c("Ready", "True")],
      { generation: 3, observedGeneration: 2, deleting: false },
      "InProgress",
    ],
    ["no conditions at all", [], { generation: 2, observedGeneration: 2, deleting: false }, "Current"],
    [
      "Ready False",
      [c("Ready", "False")],
      { generation: 2, observedGeneration: 2, deleting: false },
      "InProgress",
    ],
  ])("%s -> %s", (_what, conditions, o, expected) => {
    expect(kstatus(conditions, o)).toBe(expected);
  });
});
