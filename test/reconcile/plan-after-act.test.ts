// What the shell writes once act() has run: the task in flight, or the
// failure (a 403 naming the privilege and path, a transient error retried
// with backoff, repeated failures Stalled).
import { describe, expect, it } from "vitest";
import { statusErrors } from "../../src/api/validate.js";
import { SYNC_NOW_ANNOTATION } from "../../src/reconcile/model.js";
import { plan, planActionFailed, planTaskStarted } from "../../src/reconcile/plan.js";
import { kstatusViolations } from "../../src/reconcile/conditions.js";
import { setConditions } from "../../src/runtime/conditions.js";
import { META } from "./fixtures.js";
import { NOW, ago, inputOf, steadyWorld, withContainer, type World } from "./plan-world.js";

const UPID = "UPID:pve1:0000A1B2:0012C3D4:674C1B2D:vzcreate:103:root@pam!operator:";
const needsCreate = (): World => withContainer(steadyWorld(), "ldap1", undefined);

describe("planTaskStarted", () => {
  it("records the one task in flight, where it runs and since when", () => {
    const input = inputOf(needsCreate());
    const p = plan(input);
    expect(p.action?.kind).toBe("CreateContainer");
    const status = planTaskStarted(input, p, UPID);
    expect(status.task).toEqual({
      upid: UPID,
      action: "CreateContainer",
      server: "ldap1",
      node: "pve1",
      startedAt: ago(0),
    });
    expect(statusErrors(JSON.parse(JSON.stringify(status)))).toEqual([]);
  });

  it("records which sync-now request a sync answers", () => {
    const w = steadyWorld();
    const input = inputOf({ ...w, meta: { ...META, annotations: { [SYNC_NOW_ANNOTATION]: "now-1" } } });
    const p = plan(input);
    expect(p.action?.kind).toBe("SyncRealm");
    expect(planTaskStarted(input, p, UPID).task).toMatchObject({
      action: "SyncRealm",
      node: "pve1",
      syncRequest: "now-1",
    });
  });

  it("leaves the status alone for an action that is no task", () => {
    const w = steadyWorld({ resources: { memoryMiB: 1024 } });
    const old = steadyWorld();
    const input = inputOf({ ...w, observed: { ...w.observed, servers: old.observed.servers } });
    const p = plan(input);
    expect(p.action?.kind).toBe("UpdateInPlace");
    expect(planTaskStarted(input, p, UPID)).toBe(p.status);
  });
});

describe("planActionFailed", () => {
  const input = inputOf(needsCreate());
  const planned = plan(input);
  const check = (p: ReturnType<typeof planActionFailed>) => {
    const conditions = setConditions(input.status.conditions ?? [], p.conditions, 1, NOW);
    expect(kstatusViolations(conditions, 1)).toEqual([]);
    expect(statusErrors(JSON.parse(JSON.stringify({ ...p.status, conditions })))).toEqual([]);
    return p;
  };

  it("a 403 is Stalled, naming the privilege and the path", () => {
    const p = check(
      planActionFailed(input, planned, {
        reason: "ProxmoxForbidden",
        message:
          "API token op@pve!op lacks privilege VM.Allocate on /vms/103: POST /nodes/pve1/lxc answered 403",
        transient: false,
      }),
    );
    expect(p.action).toBeUndefined();
    expect(p.conditions.find((c) => c.type === "Stalled")).toMatchObject({
      status: "True",
      reason: "ProxmoxForbidden",
      message: expect.stringMatching(/lacks privilege VM\.Allocate on \/vms\/103/),
    });
    expect(p.events).toContainEqual(
      expect.objectContaining({ type: "Warning", reason: "ProxmoxForbidden", action: "CreateContainer" }),
    );
    expect(p.status.lastFailure).toMatchObject({
      action: "CreateContainer",
      server: "ldap1",
      attempts: 1,
      reason: "ProxmoxForbidden",
    });
    expect(p.status.phase).toBe("Stalled");
  });

  it("a transient failure is retried after the backoff, Reconciling", () => {
    const p = check(
      planActionFailed(input, planned, {
        reason: "ProxmoxUnreachable",
        message: "connection lost",
        transient: true,
      }),
    );
    expect(p.conditions.find((c) => c.type === "Reconciling")?.status).toBe("True");
    expect(p.requeueAfterMs).toBe(10_000);
  });

  it("the third failure in a row is Stalled, and the backoff grows", () => {
    const previous = {
      action: "CreateContainer",
      server: "ldap1",
      time: ago(60),
      attempts: 2,
      message: "x",
      reason: "ProxmoxLocked",
    };
    const p = check(
      planActionFailed(
        input,
        { ...planned, status: { ...planned.status, lastFailure: previous } },
        { reason: "ProxmoxLocked", message: "CT is locked", transient: true },
      ),
    );
    expect(p.status.lastFailure?.attempts).toBe(3);
    expect(p.requeueAfterMs).toBe(40_000);
    expect(p.conditions.find((c) => c.type === "Stalled")?.status).toBe("True");
  });
});
