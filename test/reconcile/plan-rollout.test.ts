// The rollout's states (rows T2, W, K, PA, PF and the preflight of I, R, E of
// the table in plan.ts), each with the observations that move it: a swap
// step by step, the preflight before the first server goes down, the pause,
// a hanging shutdown, a failed health gate with and without autoRollback,
// and observations that contradict the status (Proxmox wins).
import { describe, expect, it } from "vitest";
import type { LdapPairStatus, RolloutFailure, RolloutStrategy } from "../../src/api/ldappair.js";
import { PAUSED_ANNOTATION, type ObservedContainer, type Problem } from "../../src/reconcile/model.js";
import { FAILING_PROBE, META, runningContainer, stoppedContainer } from "./fixtures.js";
import {
  ago,
  container,
  desiredServer,
  expectPlan,
  NOW,
  run,
  steadyWorld,
  withServer,
  withStatusServer,
  type Expectation,
  type World,
} from "./plan-world.js";

type Row = [string, () => World, Expectation];

const V14 = "ghcr.io/mieweb/ldap-gateway:1.4.0";
const V15 = "ghcr.io/mieweb/ldap-gateway:1.5.0";
const VOL14 = "local:vztmpl/ldap-gateway_1.4.0.tar";
const VOL15 = "local:vztmpl/ldap-gateway_1.5.0.tar";
const UPID = (type: string, id: string) =>
  `UPID:pve1:0000A1B2:0012C3D4:674C1B2D:${type}:${id}:root@pam!operator:`;

/** Before: both servers on 1.4.0, as a steady pair with this rollout. */
const before = (strategy: RolloutStrategy, rollout: Record<string, unknown> = {}, over = {}) =>
  steadyWorld({ rollout: { strategy, ...rollout }, ...over });

/** The spec asks for 1.5.0 (pulled on pve1); both servers still run 1.4.0. */
function rolling(strategy: RolloutStrategy, rollout: Record<string, unknown> = {}, over = {}): World {
  const old = before(strategy, rollout, over);
  const w = steadyWorld({ image: V15, rollout: { strategy, ...rollout }, ...over });
  return { ...w, observed: { ...old.observed, images: { pve1: [VOL14, VOL15] } }, status: old.status };
}

/** A server's container as it runs 1.4.0 (the rollout settings are in no hash). */
function oldContainer(w: World, name: string): ObservedContainer {
  return { ...container(before(w.spec.rollout.strategy), name) };
}
const fresh = (w: World, name: string, vmid: number) =>
  stoppedContainer(desiredServer(w, name), vmid, { fresh: true });
const configured = (w: World, name: string, vmid: number) => stoppedContainer(desiredServer(w, name), vmid);
const failingNew = (w: World, name: string, vmid: number, uptimeSeconds = 400): ObservedContainer => ({
  ...runningContainer(desiredServer(w, name), vmid, { uptimeSeconds }),
  probe: FAILING_PROBE,
});
const stopped = (c: ObservedContainer): ObservedContainer => {
  const { uptimeSeconds: _u, address: _a, probe: _p, pending: _q, ...rest } = c;
  return { ...rest, status: "stopped" };
};
/** The status knows the server went down that long ago and has not passed since. */
const downSince = (w: World, name: string, seconds: number) =>
  withStatusServer(w, name, { healthy: false, passes: 0, lastDownAt: ago(seconds), healthySince: undefined });
const withContainers = (w: World, name: string, containers: ObservedContainer[]) =>
  withServer(w, name, { containers });
const withRollout = (w: World, rollout: LdapPairStatus["rollout"]): World => ({
  ...w,
  status: { ...w.status, rollout },
});
const at = (w: World, server: string, step: string, since = ago(5)) =>
  withRollout(w, {
    server,
    step,
    since,
    targetImage: V15,
    previousImage: V14,
    previousHash: oldContainer(w, server).configHash!,
  });
const paused = (w: World): World => ({
  ...w,
  spec: { ...w.spec, rollout: { ...w.spec.rollout, paused: true } },
});
const annotated = (w: World, value: string): World => ({
  ...w,
  meta: { ...META, annotations: { [PAUSED_ANNOTATION]: value } },
});

/** The server's old container fails its probe, and the status knows it has not passed since. */
const unhealthy = (w: World, name: string) =>
  withStatusServer(withContainers(w, name, [{ ...oldContainer(w, name), probe: FAILING_PROBE }]), name, {
    healthy: false,
    passes: 0,
    healthySince: undefined,
  });

/** ldap1 swapped in on 1.5.0 (CT 103), its old CT 101 kept stopped; ldap2 with its new CT 104 ready. */
function swapped(w: World, ldap1: ObservedContainer): World {
  const withLdap1 = withContainers(w, "ldap1", [stopped(oldContainer(w, "ldap1")), ldap1]);
  return withContainers(withLdap1, "ldap2", [oldContainer(w, "ldap2"), configured(w, "ldap2", 104)]);
}

describe("CreateThenSwap, step by step", () => {
  const cts = () => rolling("CreateThenSwap");
  const rows: Row[] = [
    [
      "rebuild due, the image pulled, no new container: made beside the old one, stopped (preflight)",
      cts,
      {
        action: {
          kind: "CreateContainer",
          server: "ldap1",
          params: { ostemplate: VOL15, hostname: "ldap1" },
        },
        phase: "RollingUpdate",
        events: ["CreatingContainer"],
        status: (s) =>
          expect(s.rollout).toMatchObject({
            server: "ldap1",
            step: "Preflight",
            strategy: "CreateThenSwap",
            targetImage: V15,
            previousImage: V14,
          }),
      },
    ],
    [
      "rebuild due, the new image not on the node: pulled first",
      () => {
        const w = cts();
        return { ...w, observed: { ...w.observed, images: { pve1: [VOL14] } } };
      },
      {
        action: { kind: "PullImage", volid: VOL15 },
        status: (s) => expect(s.rollout?.step).toBe("Preflight"),
      },
    ],
    [
      "ldap1's new container being made (locked): ldap2's is made meanwhile",
      () => {
        const w = cts();
        return withContainers(w, "ldap1", [
          oldContainer(w, "ldap1"),
          { ...fresh(w, "ldap1", 103), lock: "create" },
        ]);
      },
      { action: { kind: "CreateContainer", server: "ldap2" } },
    ],
    [
      "ldap1's new container fresh from create: its env written while the old one serves",
      () => {
        const w = cts();
        return withContainers(w, "ldap1", [oldContainer(w, "ldap1"), fresh(w, "ldap1", 103)]);
      },
      {
        action: { kind: "ConfigureEnv", server: "ldap1", vmid: 103 },
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "Preflight" }),
      },
    ],
    [
      "ldap1's new container configured, ldap2's not made: ldap2's is made before ldap1 goes down",
      () => {
        const w = cts();
        return withContainers(w, "ldap1", [oldContainer(w, "ldap1"), configured(w, "ldap1", 103)]);
      },
      {
        action: { kind: "CreateContainer", server: "ldap2" },
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "Preflight" }),
      },
    ],
    [
      "ldap2's new container refused by Proxmox (backoff): nothing goes down, the preflight waits",
      () => {
        const w = withContainers(cts(), "ldap1", [
          oldContainer(cts(), "ldap1"),
          configured(cts(), "ldap1", 103),
        ]);
        return {
          ...w,
          status: {
            ...w.status,
            lastFailure: {
              action: "CreateContainer",
              server: "ldap2",
              reason: "CreateFailed",
              time: ago(5),
              attempts: 1,
              message: "CreateContainer ldap2 failed: unable to create CT: storage full",
            },
          },
        };
      },
      {
        action: null,
        stalled: false,
        explanation: /first the preflight: ldap2's new container is not made yet/,
        status: (s) => {
          expect(s.rollout).toMatchObject({ server: "ldap1", step: "Preflight" });
          expect(s.servers![1]!.message).toMatch(/storage full/);
        },
      },
    ],
    [
      "the preflight has waited longer than rollout.progressDeadline: Stalled, still nothing down",
      () => {
        const w = withContainers(cts(), "ldap1", [
          oldContainer(cts(), "ldap1"),
          configured(cts(), "ldap1", 103),
        ]);
        return withRollout(
          {
            ...w,
            status: {
              ...w.status,
              lastFailure: {
                action: "CreateContainer",
                server: "ldap2",
                time: ago(5),
                attempts: 1,
                message: "CreateContainer ldap2 failed: storage full",
              },
            },
          },
          { server: "ldap1", step: "Preflight", since: ago(11 * 60) },
        );
      },
      { action: null, stalled: "ProgressDeadlineExceeded", message: /longer than rollout.progressDeadline/ },
    ],
    [
      "both new containers configured, the peer healthy and settled: ldap1's old CT 101 stopped",
      () => {
        const w = cts();
        return withContainers(
          withContainers(w, "ldap1", [oldContainer(w, "ldap1"), configured(w, "ldap1", 103)]),
          "ldap2",
          [oldContainer(w, "ldap2"), configured(w, "ldap2", 104)],
        );
      },
      {
        action: { kind: "StopContainer", server: "ldap1", vmid: 101, timeoutSeconds: 10 },
        events: ["StoppingForSwap"],
        status: (s) => {
          expect(s.servers![0]!.lastDownAt).toBe(NOW.toISOString());
          expect(s.rollout).toMatchObject({ server: "ldap1", step: "Stop" });
        },
      },
    ],
    [
      "both configured, the peer failing: wait at the peer gate",
      () => {
        const w = cts();
        return withContainers(
          withContainers(w, "ldap1", [oldContainer(w, "ldap1"), configured(w, "ldap1", 103)]),
          "ldap2",
          [{ ...oldContainer(w, "ldap2"), probe: FAILING_PROBE }, configured(w, "ldap2", 104)],
        );
      },
      { action: null, reason: "WaitingForPeer", message: /its peer ldap2 fails its probe/ },
    ],
    [
      "the old one stopped, the new one configured: the new one started, never gated (the peer fails)",
      () => {
        const w = swapped(cts(), configured(cts(), "ldap1", 103));
        return withContainers(w, "ldap2", [
          { ...oldContainer(w, "ldap2"), probe: FAILING_PROBE },
          configured(w, "ldap2", 104),
        ]);
      },
      {
        action: { kind: "StartContainer", server: "ldap1", vmid: 103 },
        status: (s) => expect(s.rollout?.step).toBe("Start"),
      },
    ],
    [
      "the new one running, not yet verified, within healthGateTimeout: wait; the old one kept stopped",
      () =>
        at(
          swapped(cts(), {
            ...runningContainer(desiredServer(cts(), "ldap1"), 103, { uptimeSeconds: 3 }),
            probe: FAILING_PROBE,
          }),
          "ldap1",
          "Start",
        ),
      {
        action: null,
        reason: "Verifying",
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "Verify" }),
      },
    ],
    [
      "the new one verified (passes in a row): the old CT 101 deleted",
      () => {
        const ldap1 = runningContainer(desiredServer(cts(), "ldap1"), 103, { uptimeSeconds: 20 });
        return withStatusServer(at(swapped(cts(), ldap1), "ldap1", "Verify"), "ldap1", {
          address: ldap1.address!,
          passes: 1,
          healthy: false,
        });
      },
      {
        action: { kind: "DeleteContainer", server: "ldap1", vmid: 101 },
        events: ["RemovingOldContainer"],
        status: (s) => expect(s.rollout?.step).toBe("Cleanup"),
      },
    ],
    [
      "the new one fails past healthGateTimeout: the failure recorded before anything else, Warning, Degraded",
      () => downSince(at(swapped(cts(), failingNew(cts(), "ldap1", 103)), "ldap1", "Verify"), "ldap1", 400),
      {
        action: null,
        phase: "Degraded",
        ready: false,
        events: ["HealthGateFailed"],
        requeueMs: 1,
        status: (s) =>
          expect(s.rollout?.failure).toMatchObject({
            server: "ldap1",
            image: V15,
            hash: desiredServer(cts(), "ldap1").configHash,
            failedStep: "connect",
            previousImage: V14,
          }),
      },
    ],
    [
      "both containers of ldap1 running, the new one not verified: the new one stopped, the old one serves",
      () => {
        const w = cts();
        return withContainers(w, "ldap1", [
          oldContainer(w, "ldap1"),
          { ...runningContainer(desiredServer(w, "ldap1"), 103, { uptimeSeconds: 5 }), probe: FAILING_PROBE },
        ]);
      },
      { action: { kind: "StopContainer", server: "ldap1", vmid: 103 }, events: ["StoppingSecondContainer"] },
    ],
    [
      "both running, the new one verified: the old one stopped",
      () => {
        const w = cts();
        const next = runningContainer(desiredServer(w, "ldap1"), 103, { uptimeSeconds: 60 });
        return withStatusServer(withContainers(w, "ldap1", [oldContainer(w, "ldap1"), next]), "ldap1", {
          address: next.address!,
          passes: 2,
        });
      },
      { action: { kind: "StopContainer", server: "ldap1", vmid: 101 } },
    ],
    [
      "paused: no new container is made, phase Paused, not Stalled",
      () => paused(cts()),
      {
        action: null,
        phase: "Paused",
        reason: "RolloutPaused",
        stalled: false,
        status: (s) => expect(s.rollout?.step).toBe("Paused"),
      },
    ],
    [
      "paused with ldap1's old one stopped: its new one started all the same (never held down)",
      () => paused(swapped(cts(), configured(cts(), "ldap1", 103))),
      { action: { kind: "StartContainer", server: "ldap1", vmid: 103 } },
    ],
    [
      "paused by the annotation ldapgateway.io/paused",
      () => annotated(cts(), "true"),
      { action: null, phase: "Paused" },
    ],
    [
      "the annotation ldapgateway.io/paused=false does not pause",
      () => annotated(cts(), "false"),
      { action: { kind: "CreateContainer", server: "ldap1" } },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });
});

describe("RemoveThenCreate and restarts: the preflight and the pause", () => {
  const twoNodes = {
    servers: [
      { name: "ldap1", node: "pve1" },
      { name: "ldap2", node: "pve2" },
    ],
  };
  const rows: Row[] = [
    [
      "servers on two nodes, the image on pve1 only: pulled on pve2 before ldap1 goes down",
      () => {
        const w = rolling("RemoveThenCreate", {}, twoNodes);
        return { ...w, observed: { ...w.observed, images: { pve1: [VOL14, VOL15], pve2: [VOL14] } } };
      },
      {
        action: { kind: "PullImage", node: "pve2", volid: VOL15 },
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "Preflight" }),
      },
    ],
    [
      "the realm drifted too: ldap1's stop still comes first (the realm after the servers, as ever)",
      () => {
        const w = rolling("RemoveThenCreate");
        const realm = w.observed.realm!;
        return {
          ...w,
          observed: { ...w.observed, realm: { ...realm, config: { ...realm.config, mode: "ldap" } } },
        };
      },
      { action: { kind: "StopContainer", server: "ldap1" } },
    ],
    [
      "paused: the new image is not even pulled",
      () => {
        const w = paused(rolling("RemoveThenCreate"));
        return { ...w, observed: { ...w.observed, images: { pve1: [VOL14] } } };
      },
      { action: null, phase: "Paused", reason: "RolloutPaused" },
    ],
    [
      "paused with ldap1 already deleted: ldap1 is created all the same, then the pause holds",
      () => at(paused(withContainers(rolling("RemoveThenCreate"), "ldap1", [])), "ldap1", "Remove"),
      { action: { kind: "CreateContainer", server: "ldap1", params: { ostemplate: VOL15 } } },
    ],
    [
      "rollout.restartedAt set on a pinned tag: a rebuild, no pull, ldap1 stopped first",
      () => {
        const old = before("RemoveThenCreate");
        const w = steadyWorld({
          rollout: { strategy: "RemoveThenCreate", restartedAt: "2026-12-02T08:00:00Z" },
        });
        return { ...w, observed: old.observed, status: old.status };
      },
      { action: { kind: "StopContainer", server: "ldap1" }, events: ["StoppingForRebuild"] },
    ],
    [
      "ldap2 unhealthy as the rollout begins: ldap1 waits for its peer, ldap2 for ldap1; nothing goes down",
      () => unhealthy(rolling("RemoveThenCreate"), "ldap2"),
      { action: null, reason: "WaitingForPeer", message: /ldap2 fails its probe/ },
    ],
    [
      "... past rollout.progressDeadline: Stalled, still nothing down",
      () => at(unhealthy(rolling("RemoveThenCreate"), "ldap2"), "ldap1", "WaitingForPeer", ago(700)),
      { action: null, stalled: "ProgressDeadlineExceeded", message: /ldap2/ },
    ],
    [
      "ldap1 unhealthy, ldap2 healthy: ldap1 goes first, as ever (its peer passes)",
      () => unhealthy(rolling("RemoveThenCreate"), "ldap1"),
      { action: { kind: "StopContainer", server: "ldap1" } },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });
});

describe("a shutdown that hangs: the stop is bounded", () => {
  const stopTask = (startedAt: string) => ({
    upid: UPID("vzshutdown", "101"),
    action: "StopContainer" as const,
    server: "ldap1",
    node: "pve1",
    vmid: 101,
    startedAt,
  });
  const shutting = (startedAt: string, deleting = false): World => {
    const w = rolling("RemoveThenCreate");
    return {
      ...w,
      meta: { ...w.meta, deleting },
      status: { ...w.status, task: stopTask(startedAt) },
      observed: { ...w.observed, task: { upid: stopTask(startedAt).upid, state: "running" } },
    };
  };
  const rows: Row[] = [
    [
      "our shutdown running 15 s (timeout 10 s): wait for it",
      () => shutting(ago(15)),
      { action: null, reason: "StopContainerRunning" },
    ],
    [
      "our shutdown running 25 s, past twice its timeout: a hard stop that overrules it",
      () => shutting(ago(25)),
      {
        action: { kind: "StopContainer", server: "ldap1", vmid: 101, overrule: true },
        events: ["OverrulingShutdown"],
        explanation: /overruling its shutdown/,
      },
    ],
    [
      "our hard stop (vzstop, an overrule itself) running 25 s: waited for, never overruled again",
      () => {
        const w = shutting(ago(25));
        const upid = UPID("vzstop", "101");
        return {
          ...w,
          status: { ...w.status, task: { ...w.status.task!, upid } },
          observed: { ...w.observed, task: { upid, state: "running" } },
        };
      },
      { action: null, reason: "StopContainerRunning" },
    ],
    [
      "the same while the pair is deleted",
      () => {
        const w = shutting(ago(25), true);
        return { ...w, spec: { ...w.spec, deletionPolicy: "Delete" } };
      },
      { action: { kind: "StopContainer", vmid: 101, overrule: true } },
    ],
    [
      "a shutdown that failed: asked again (after the backoff) as a hard stop",
      () => {
        const w = rolling("RemoveThenCreate");
        return {
          ...w,
          status: {
            ...w.status,
            lastFailure: {
              action: "StopContainer",
              server: "ldap1",
              reason: "StopFailed",
              time: ago(20),
              attempts: 1,
              message: "StopContainer ldap1 (CT 101) failed: command 'lxc-stop' failed",
            },
          },
        };
      },
      { action: { kind: "StopContainer", server: "ldap1", overrule: true } },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });
});

/** ldap1 failed its health gate on 1.5.0; the record as the planner wrote it. */
function failure(w: World, rollback?: RolloutFailure["rollback"]): RolloutFailure {
  return {
    server: "ldap1",
    image: V15,
    hash: desiredServer(w, "ldap1").configHash,
    failedStep: "connect",
    message:
      "ldap1 failed its health gate on ghcr.io/mieweb/ldap-gateway:1.5.0 (connect: connection refused)",
    time: ago(30),
    previousImage: V14,
    previousHash: oldContainer(w, "ldap1").configHash!,
    ...(rollback ? { rollback } : {}),
  };
}
const withFailure = (w: World, f: RolloutFailure): World =>
  withRollout(w, { server: "ldap1", step: "HealthGateFailed", since: ago(30), failure: f });
const swapBack = (w: World, state: "RollingBack" | "RolledBack" | "Failed" = "RollingBack") =>
  withFailure(
    w,
    failure(w, {
      mode: "Swap",
      state,
      image: V14,
      hash: oldContainer(w, "ldap1").configHash!,
      since: ago(20),
    }),
  );
const rebuildBack = (w: World, state: "RollingBack" | "RolledBack" = "RollingBack") =>
  withFailure(
    w,
    failure(w, {
      mode: "Rebuild",
      state,
      image: V14,
      hash: desiredServer(before("RemoveThenCreate"), "ldap1").configHash,
      since: ago(20),
    }),
  );

describe("a failed health gate", () => {
  const ctsFailed = (autoRollback = false) => {
    const w = rolling("CreateThenSwap", { autoRollback });
    return downSince(swapped(w, failingNew(w, "ldap1", 103)), "ldap1", 400);
  };
  const rtcFailed = (autoRollback = false) => {
    const w = rolling("RemoveThenCreate", { autoRollback });
    return downSince(withContainers(w, "ldap1", [failingNew(w, "ldap1", 103)]), "ldap1", 400);
  };
  const rows: Row[] = [
    [
      "CreateThenSwap, no autoRollback: halted, the peer untouched, Stalled HealthGateFailed, Degraded",
      () => withFailure(ctsFailed(), failure(ctsFailed())),
      {
        action: null,
        ready: false,
        stalled: "HealthGateFailed",
        reason: "HealthGateFailed",
        phase: "Degraded",
        message:
          /ldap1 failed its health gate on .*1\.5\.0.*ldap2 is untouched and serves .*1\.4\.0.*autoRollback/,
        status: (s) => expect(s.rollout?.failure).toMatchObject({ server: "ldap1", failedStep: "connect" }),
      },
    ],
    [
      "RemoveThenCreate, no autoRollback: the same",
      () => withFailure(rtcFailed(), failure(rtcFailed())),
      { action: null, stalled: "HealthGateFailed", phase: "Degraded" },
    ],
    [
      "the spec moves on (1.6.0): the failure no longer holds, the rollout goes on",
      () => {
        const w = withFailure(rtcFailed(), failure(rtcFailed()));
        return {
          ...w,
          spec: steadyWorld({ image: "ghcr.io/mieweb/ldap-gateway:1.6.0" }).spec,
          desired: steadyWorld({ image: "ghcr.io/mieweb/ldap-gateway:1.6.0" }).desired,
        };
      },
      {
        action: { kind: "PullImage", volid: "local:vztmpl/ldap-gateway_1.6.0.tar" },
        status: (s) => expect(s.rollout?.failure).toBeUndefined(),
      },
    ],
    [
      "no rollback begun, ldap1 passes now (the database came back): the record dropped, the rollout goes on",
      () => {
        const w = rolling("RemoveThenCreate");
        const ok = runningContainer(desiredServer(w, "ldap1"), 103, { uptimeSeconds: 900 });
        return withStatusServer(withFailure(withContainers(w, "ldap1", [ok]), failure(w)), "ldap1", {
          address: ok.address!,
          passes: 1,
        });
      },
      {
        action: null,
        events: ["HealthGateRecovered"],
        status: (s) => expect(s.rollout?.failure).toBeUndefined(),
      },
    ],
    [
      "CreateThenSwap with autoRollback: the rollback recorded first (Swap, back to 1.4.0), Warning",
      () => withFailure(ctsFailed(true), failure(ctsFailed(true))),
      {
        action: null,
        events: ["RollingBack"],
        phase: "Degraded",
        status: (s) =>
          expect(s.rollout?.failure?.rollback).toMatchObject({
            mode: "Swap",
            state: "RollingBack",
            image: V14,
          }),
      },
    ],
    [
      "RemoveThenCreate with autoRollback: a rebuild from the previous image recorded",
      () => withFailure(rtcFailed(true), failure(rtcFailed(true))),
      {
        action: null,
        events: ["RollingBack"],
        status: (s) =>
          expect(s.rollout?.failure?.rollback).toMatchObject({
            mode: "Rebuild",
            image: V14,
            hash: desiredServer(before("RemoveThenCreate"), "ldap1").configHash,
          }),
      },
    ],
    [
      "autoRollback after an env change: nothing to go back to (the previous env is not kept), halted",
      () => {
        const w = rtcFailed(true);
        return withFailure(w, { ...failure(w), image: V14, previousImage: V14 });
      },
      {
        action: null,
        stalled: "HealthGateFailed",
        message: /autoRollback cannot help: the change was not of the image/,
      },
    ],
    [
      "rolling back a swap: the failed CT 103 stopped first",
      () => swapBack(ctsFailed(true)),
      {
        action: { kind: "StopContainer", server: "ldap1", vmid: 103 },
        events: ["RollingBack"],
        reconciling: true,
        phase: "Degraded",
        status: (s) => expect(s.rollout?.step).toBe("RollbackStop"),
      },
    ],
    [
      "rolling back a swap is never paused",
      () => paused(swapBack(ctsFailed(true))),
      { action: { kind: "StopContainer", vmid: 103 } },
    ],
    [
      "rolling back a swap: both stopped, the kept CT 101 started (one start undoes it)",
      () => {
        const w = ctsFailed(true);
        return swapBack(swapped(w, stopped(failingNew(w, "ldap1", 103))));
      },
      {
        action: { kind: "StartContainer", server: "ldap1", vmid: 101 },
        status: (s) => expect(s.rollout?.step).toBe("RollbackStart"),
      },
    ],
    [
      "rolling back a swap: the kept one verified, the failed one deleted",
      () => {
        const w = ctsFailed(true);
        const kept = oldContainer(w, "ldap1");
        const back = withContainers(w, "ldap1", [kept, stopped(failingNew(w, "ldap1", 103))]);
        return swapBack(withStatusServer(back, "ldap1", { address: kept.address!, passes: 1 }));
      },
      {
        action: { kind: "DeleteContainer", server: "ldap1", vmid: 103 },
        events: ["RemovingFailedContainer"],
      },
    ],
    [
      "rolling back a swap: only the kept one left, verified: RolledBack recorded, Warning",
      () => {
        const w = ctsFailed(true);
        return swapBack(
          withStatusServer(withContainers(w, "ldap1", [oldContainer(w, "ldap1")]), "ldap1", {
            address: oldContainer(w, "ldap1").address!,
            passes: 1,
          }),
        );
      },
      {
        action: null,
        events: ["RolledBack"],
        status: (s) =>
          expect(s.rollout?.failure?.rollback).toMatchObject({ state: "RolledBack", image: V14 }),
      },
    ],
    [
      "rolled back: Stalled RolledBack naming both versions; ldap2's unused new CT 104 deleted",
      () => {
        const w = ctsFailed(true);
        return swapBack(withContainers(w, "ldap1", [oldContainer(w, "ldap1")]), "RolledBack");
      },
      {
        action: { kind: "DeleteContainer", server: "ldap2", vmid: 104 },
        events: ["RemovingUnusedContainer"],
        stalled: "RolledBack",
        phase: "Degraded",
        message:
          /ldap1 failed its health gate on .*1\.5\.0 \(step connect\) and was rolled back to .*1\.4\.0/,
      },
    ],
    [
      "rolled back, nothing left to clean: nothing done, Ready False",
      () => {
        const w = rolling("CreateThenSwap", { autoRollback: true });
        return swapBack(withContainers(w, "ldap1", [oldContainer(w, "ldap1")]), "RolledBack");
      },
      { action: null, ready: false, stalled: "RolledBack", reason: "RolledBack", phase: "Degraded" },
    ],
    [
      "rolling back by a rebuild: the failed container stopped behind the gate",
      () => rebuildBack(rtcFailed(true)),
      {
        action: { kind: "StopContainer", server: "ldap1", vmid: 103 },
        status: (s) => expect(s.rollout?.step).toBe("RollbackStop"),
      },
    ],
    [
      "rolling back by a rebuild: ldap1 gone, made again from 1.4.0",
      () => rebuildBack(withContainers(rtcFailed(true), "ldap1", [])),
      { action: { kind: "CreateContainer", server: "ldap1", params: { ostemplate: VOL14 } } },
    ],
    [
      "rolled back by a rebuild, verified on 1.4.0: RolledBack recorded",
      () => {
        const w = rtcFailed(true);
        const back = runningContainer(desiredServer(before("RemoveThenCreate"), "ldap1"), 105);
        return withStatusServer(rebuildBack(withContainers(w, "ldap1", [back])), "ldap1", {
          address: back.address!,
          passes: 2,
        });
      },
      {
        action: null,
        events: ["RolledBack"],
        status: (s) => {
          expect(s.rollout?.failure?.rollback?.state).toBe("RolledBack");
          expect(s.servers![0]!.image).toBe(V14);
        },
      },
    ],
    [
      "the kept one fails past healthGateTimeout after the rollback: RollbackFailed recorded",
      () => {
        const w = ctsFailed(true);
        const kept = { ...oldContainer(w, "ldap1"), probe: FAILING_PROBE, uptimeSeconds: 400 };
        return swapBack(
          downSince(withContainers(w, "ldap1", [kept, stopped(failingNew(w, "ldap1", 103))]), "ldap1", 400),
        );
      },
      {
        action: null,
        events: ["RollbackFailed"],
        status: (s) => expect(s.rollout?.failure?.rollback?.state).toBe("Failed"),
      },
    ],
    [
      "the rollback failed: Stalled RollbackFailed, nothing more done",
      () => {
        const w = ctsFailed(true);
        const kept = { ...oldContainer(w, "ldap1"), probe: FAILING_PROBE, uptimeSeconds: 400 };
        return swapBack(withContainers(w, "ldap1", [kept]), "Failed");
      },
      { action: null, stalled: "RollbackFailed", phase: "Degraded" },
    ],
    [
      "the peer is held: ldap2 on the old image is not rebuilt while ldap1's failure stands",
      () => withFailure(rtcFailed(), failure(rtcFailed())),
      {
        action: null,
        status: (s) =>
          expect(s.servers![1]!.message).toMatch(/ldap2 is left as it is: the rollout is halted/),
      },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    const p = expectPlan(w(), e);
    // The peer is never touched while ldap1's failure stands, but for its unused new container.
    if (p.action && "server" in p.action && p.action.server === "ldap2")
      expect(p.action).toMatchObject({ vmid: 104, kind: "DeleteContainer" });
  });
});

describe("nothing observed yet, and observations that contradict the status", () => {
  const problem = (reason: string, message: string): Problem => ({ reason, message, transient: true });
  const rows: Row[] = [
    [
      "a rollout under way, Proxmox unreachable: wait, the rollout's progress kept as it was",
      () => {
        const w = at(rolling("RemoveThenCreate"), "ldap1", "Create");
        return {
          ...w,
          observed: {
            ...w.observed,
            proxmox: { ok: false, problem: problem("ProxmoxUnreachable", "connect ECONNREFUSED") },
          },
        };
      },
      {
        action: null,
        reconciling: true,
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "Create", since: ago(5) }),
      },
    ],
    [
      "a rollout under way, the task's status unreadable: wait, the progress kept",
      () => {
        const w = at(withContainers(rolling("RemoveThenCreate"), "ldap1", []), "ldap1", "Create");
        const task = {
          upid: UPID("vzcreate", "103"),
          action: "CreateContainer" as const,
          server: "ldap1",
          node: "pve1",
          startedAt: ago(2),
        };
        return {
          ...w,
          status: { ...w.status, task },
          observed: {
            ...w.observed,
            task: {
              upid: task.upid,
              state: "unknown",
              problem: problem("ProxmoxNodeUnreachable", "node pve1 unreachable"),
            },
          },
        };
      },
      {
        action: null,
        reason: "TaskUnreadable",
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "Create" }),
      },
    ],
    [
      "status says the rollout is at ldap2, Proxmox shows ldap1 still on the old image: ldap1 first",
      () => at(rolling("RemoveThenCreate"), "ldap2", "Stop"),
      {
        action: { kind: "StopContainer", server: "ldap1" },
        status: (s) => expect(s.rollout?.server).toBe("ldap1"),
      },
    ],
    [
      "status says ldap1 is at Stop, Proxmox shows it rebuilt and verified long ago: the rollout moves to ldap2",
      () => {
        const w = rolling("RemoveThenCreate");
        const rebuilt = runningContainer(desiredServer(w, "ldap1"), 103, { uptimeSeconds: 600 });
        return withStatusServer(
          at(withContainers(w, "ldap1", [rebuilt]), "ldap1", "Stop", ago(600)),
          "ldap1",
          {
            address: rebuilt.address!,
            passes: 2,
            lastDownAt: ago(600),
          },
        );
      },
      {
        action: { kind: "StopContainer", server: "ldap2" },
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap2", step: "Stop", previousImage: V14 }),
      },
    ],
    [
      "the record of ldap1's create was lost (a crash): the container Proxmox shows locked is waited for, not made again",
      () =>
        withContainers(at(rolling("RemoveThenCreate"), "ldap1", "Remove"), "ldap1", [
          { ...fresh(rolling("RemoveThenCreate"), "ldap1", 103), lock: "create" },
        ]),
      { action: null, status: (s) => expect(s.servers![0]).toMatchObject({ state: "Creating", vmid: 103 }) },
    ],
    [
      "status records a failure, but Proxmox shows ldap1 on the old image, serving (put back by hand): held still, as the spec asks for what failed",
      () => {
        const w = rolling("RemoveThenCreate");
        return withFailure(w, failure(w));
      },
      { action: null, stalled: "HealthGateFailed" },
    ],
    [
      "status records a swap's failure, Proxmox no longer shows the kept container: the rollback fails, said so",
      () => {
        const w = rolling("CreateThenSwap", { autoRollback: true });
        return swapBack(withContainers(w, "ldap1", [failingNew(w, "ldap1", 103)]));
      },
      { action: null, events: ["RollbackFailed"], message: /the kept old container of ldap1 is gone/ },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });
});

describe("the rollout's progress in status", () => {
  it("keeps the step's start while the step lasts, and starts it anew with the next step", () => {
    const w = withServer(rolling("RemoveThenCreate"), "ldap2", {
      containers: [{ ...oldContainer(rolling("RemoveThenCreate"), "ldap2"), probe: FAILING_PROBE }],
    });
    const waiting = run(withRollout(w, { server: "ldap1", step: "WaitingForPeer", since: ago(120) }));
    expect(waiting.status.rollout).toMatchObject({ step: "WaitingForPeer", since: ago(120) });
    const stopping = run(
      withRollout(rolling("RemoveThenCreate"), { server: "ldap1", step: "WaitingForPeer", since: ago(120) }),
    );
    expect(stopping.status.rollout).toMatchObject({ step: "Stop", since: ago(0) });
  });

  it("names target and previous image and hash, the strategy and how many servers are done", () => {
    const w = rolling("CreateThenSwap");
    const p = run(w);
    expect(p.status.rollout).toEqual(
      expect.objectContaining({
        server: "ldap1",
        strategy: "CreateThenSwap",
        targetImage: V15,
        targetHash: desiredServer(w, "ldap1").configHash,
        previousImage: V14,
        previousHash: oldContainer(w, "ldap1").configHash,
        updatedServers: 0,
      }),
    );
  });

  it("shows the realm sync after the last server, then ends with the rollout", () => {
    const w = steadyWorld({ image: V15 });
    const owed = {
      ...w,
      status: {
        ...w.status,
        rollout: { server: "ldap2", step: "Verify", since: ago(10), targetImage: V15, previousImage: V14 },
        realm: { ...w.status.realm!, pendingSync: "ServerRebuilt" as const },
      },
    };
    const p = run(owed);
    expect(p.action).toMatchObject({ kind: "SyncRealm" });
    expect(p.status.rollout).toMatchObject({ server: "ldap2", step: "RealmSync", updatedServers: 2 });
    const done = run({ ...owed, status: { ...owed.status, realm: w.status.realm } });
    expect(done.status.rollout).toBeUndefined();
  });
});
