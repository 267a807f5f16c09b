// Deletion (rows D0 to D9 of the table in plan.ts): both policies, the
// annotation that drops the finalizer, Proxmox unusable, and the clean-up
// order: containers, images, realm, node DNS, then the finalizer.
import { describe, expect, it } from "vitest";
import type { LdapPairStatus } from "../../src/api/ldappair.js";
import { DROP_FINALIZER_ANNOTATION, type Problem } from "../../src/reconcile/model.js";
import { realmMarker } from "../../src/reconcile/desired.js";
import { FAILING_PROBE, META, OTHER_UID, stoppedContainer } from "./fixtures.js";
import {
  ago,
  container,
  desiredServer,
  expectPlan,
  realmAsCreated,
  run,
  steadyWorld,
  withContainer,
  type Expectation,
  type World,
} from "./plan-world.js";

type Row = [string, () => World, Expectation];

const VOLID = "local:vztmpl/ldap-gateway_1.4.0.tar";

/** A pair being deleted with policy Delete (unless told otherwise). */
function deleting(overrides: Record<string, unknown> = {}): World {
  const w = steadyWorld({ deletionPolicy: "Delete", ...overrides });
  return { ...w, meta: { ...META, deleting: true } };
}
/** Nothing of the pair's left in Proxmox but what `change` adds. */
function cleaned(change: (w: World) => World = (w) => w): World {
  const w = deleting();
  const servers = w.observed.servers.map((s) => ({ ...s, containers: [] }));
  return change({
    ...w,
    observed: { ...w.observed, servers, realm: {}, images: { pve1: [VOLID] }, imagesInUseElsewhere: [] },
  });
}
const withStatus = (w: World, change: Partial<LdapPairStatus>): World => ({
  ...w,
  status: { ...w.status, ...change },
});
const problem = (reason: string, transient: boolean): Problem => ({
  reason,
  message: `${reason} happened`,
  transient,
});

describe("deletion", () => {
  const rows: Row[] = [
    [
      "the finalizer already gone: nothing",
      () => ({ ...deleting(), meta: { ...META, deleting: true, hasFinalizer: false } }),
      { action: null, phase: "Deleting" },
    ],
    [
      "the drop-finalizer annotation: the finalizer goes, Proxmox untouched (even unreachable)",
      () => {
        const w = deleting();
        return {
          ...w,
          meta: { ...w.meta, annotations: { [DROP_FINALIZER_ANNOTATION]: "true" } },
          observed: { ...w.observed, proxmox: { ok: false, problem: problem("ProxmoxUnreachable", true) } },
        };
      },
      { action: { kind: "RemoveFinalizer" }, onlyEvents: ["FinalizerDropped"] },
    ],
    [
      "policy Retain: the finalizer goes, an event names what stays",
      () => ({ ...steadyWorld(), meta: { ...META, deleting: true } }),
      { action: { kind: "RemoveFinalizer" }, onlyEvents: ["Retained"], phase: "Deleting" },
    ],
    [
      "Proxmox unreachable: wait, the condition says why and how to drop the finalizer",
      () => {
        const w = deleting();
        return {
          ...w,
          observed: { ...w.observed, proxmox: { ok: false, problem: problem("ProxmoxUnreachable", true) } },
        };
      },
      {
        action: null,
        reconciling: true,
        stalled: false,
        reason: "DeletionBlocked",
        message: /ProxmoxUnreachable happened; .*annotate it with ldapgateway\.io\/drop-finalizer=true/,
        requeueMs: 15_000,
      },
    ],
    [
      "a wrong token: Stalled, never hangs silently",
      () => {
        const w = deleting();
        return {
          ...w,
          observed: { ...w.observed, proxmox: { ok: false, problem: problem("ProxmoxUnauthorized", false) } },
        };
      },
      { action: null, stalled: "DeletionBlocked", events: ["DeletionBlocked"] },
    ],
    [
      "a task running: wait",
      () =>
        withStatus(deleting(), {
          task: {
            upid: "UPID:pve1:00000001:00000001:00000001:vzstop:101:root@pam!op:",
            action: "StopContainer",
            server: "ldap1",
            node: "pve1",
            vmid: 101,
            startedAt: ago(2),
          },
        }),
      { action: null, requeueMs: 1_000 },
    ],
    [
      "containers running: stopped, without the peer gate (the pair is going away)",
      () => {
        const w = deleting();
        return withContainer(w, "ldap2", { ...container(w, "ldap2"), probe: FAILING_PROBE });
      },
      {
        action: { kind: "StopContainer", server: "ldap1", vmid: 101 },
        events: ["CleaningUp"],
        phase: "Deleting",
      },
    ],
    [
      "ldap1 stopped: deleted",
      () => withContainer(deleting(), "ldap1", stoppedContainer(desiredServer(deleting(), "ldap1"), 101)),
      { action: { kind: "DeleteContainer", server: "ldap1", vmid: 101 } },
    ],
    [
      "a container locked: wait",
      () => withContainer(deleting(), "ldap1", { ...container(deleting(), "ldap1"), lock: "backup" }),
      { action: null, explanation: /locked \(backup\)/ },
    ],
    [
      "the stop ended: folded, and the container deleted next",
      () => {
        const w = withContainer(
          deleting(),
          "ldap1",
          stoppedContainer(desiredServer(deleting(), "ldap1"), 101),
        );
        const upid = "UPID:pve1:00000001:00000001:00000001:vzstop:101:root@pam!op:";
        return {
          ...withStatus(w, {
            task: {
              upid,
              action: "StopContainer",
              server: "ldap1",
              node: "pve1",
              vmid: 101,
              startedAt: ago(3),
            },
          }),
          observed: { ...w.observed, task: { upid, state: "ok", exitStatus: "OK" } },
        };
      },
      {
        action: { kind: "DeleteContainer", vmid: 101 },
        events: ["ContainerStopped", "CleaningUp"],
        status: (s) => expect(s.task).toBeUndefined(),
      },
    ],
    [
      "containers gone, a volume it pulled that no other pair uses: deleted",
      () => cleaned((w) => withStatus(w, { images: [{ node: "pve1", volid: VOLID }] })),
      { action: { kind: "DeleteImage", node: "pve1", storage: "local", volid: VOLID } },
    ],
    [
      "a volume another pair uses: kept",
      () =>
        cleaned((w) => ({
          ...withStatus(w, { images: [{ node: "pve1", volid: VOLID }] }),
          observed: { ...w.observed, imagesInUseElsewhere: [VOLID] },
        })),
      { action: { kind: "RemoveFinalizer" }, events: ["CleanedUp"] },
    ],
    [
      "who else uses the volume unknown: kept",
      () =>
        cleaned((w) => {
          const { imagesInUseElsewhere: _u, ...observed } = w.observed;
          return { ...withStatus(w, { images: [{ node: "pve1", volid: VOLID }] }), observed };
        }),
      { action: { kind: "RemoveFinalizer" } },
    ],
    [
      "the realm it created: deleted",
      () => cleaned((w) => ({ ...w, observed: { ...w.observed, realm: realmAsCreated(w.desired!) } })),
      { action: { kind: "DeleteRealm", name: "ldap" } },
    ],
    [
      "a realm it adopted: kept",
      () =>
        cleaned((w) => ({ ...w, observed: { ...w.observed, realm: realmAsCreated(w.desired!, "adopted") } })),
      { action: { kind: "RemoveFinalizer" } },
    ],
    [
      "a realm of another pair: kept",
      () =>
        cleaned((w) => {
          const realm = realmAsCreated(w.desired!);
          return {
            ...w,
            observed: {
              ...w.observed,
              realm: {
                ...realm,
                config: { ...realm.config, comment: realmMarker({ ...META, uid: OTHER_UID }, "created") },
                managedBy: OTHER_UID,
              },
            },
          };
        }),
      { action: { kind: "RemoveFinalizer" } },
    ],
    [
      "node DNS it changed: restored to the recorded values",
      () =>
        cleaned((w) => ({
          ...withStatus(w, { nodeDns: [{ node: "pve1", previous: { search: "lan", dns1: "192.168.1.1" } }] }),
          observed: {
            ...w.observed,
            nodeDns: { pve1: { search: "example.com", dns1: "10.0.0.2", dns2: "192.168.1.1" } },
          },
        })),
      { action: { kind: "SetNodeDns", node: "pve1", dns: { search: "lan", dns1: "192.168.1.1" } } },
    ],
    [
      "node DNS restored: the record is forgotten, look again",
      () =>
        cleaned((w) => ({
          ...withStatus(w, { nodeDns: [{ node: "pve1", previous: { search: "lan", dns1: "192.168.1.1" } }] }),
          observed: { ...w.observed, nodeDns: { pve1: { search: "lan", dns1: "192.168.1.1" } } },
        })),
      { action: null, requeueMs: 1, status: (s) => expect(s.nodeDns).toEqual([]) },
    ],
    [
      "nothing left: the finalizer goes",
      () => cleaned(),
      { action: { kind: "RemoveFinalizer" }, events: ["CleanedUp"], phase: "Deleting" },
    ],
  ];
  it.each(rows)("%s", (_n, w, e) => {
    const p = expectPlan(w(), e);
    expect(p.conditions.find((c) => c.type === "Ready")?.status).toBe("False");
  });

  it("forgets a deleted volume, and names the ones it keeps", () => {
    const gone = run(
      cleaned((w) => ({
        ...withStatus(w, { images: [{ node: "pve1", volid: VOLID }] }),
        observed: { ...w.observed, images: { pve1: [] } },
      })),
    );
    expect(gone.action).toEqual({ kind: "RemoveFinalizer" });
    expect(gone.status.images).toEqual([]);
    expect(gone.events.at(-1)!.note).not.toMatch(/image volumes kept/);
    const shared = run(
      cleaned((w) => ({
        ...withStatus(w, { images: [{ node: "pve1", volid: VOLID }] }),
        observed: { ...w.observed, imagesInUseElsewhere: [VOLID] },
      })),
    );
    expect(shared.events.at(-1)!.note).toMatch(
      /image volumes kept \(in use or not listed\): local:vztmpl\/ldap-gateway_1\.4\.0\.tar/,
    );
  });

  it("names what Retain leaves behind", () => {
    const p = run({ ...steadyWorld(), meta: { ...META, deleting: true } });
    expect(p.events[0]!.note).toMatch(/ldap1 \(CT 101 on pve1\), ldap2 \(CT 102 on pve1\), realm ldap/);
  });
});
