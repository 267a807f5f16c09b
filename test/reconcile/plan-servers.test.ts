// The planner's per-server states (rows C to OK of the table in plan.ts),
// each with the observations that move it: provisioning from nothing, the
// tiers behind the peer gate, drift, conflicts, and observations that
// contradict the status (Proxmox wins). A rebuild here takes the runbook's
// path (RemoveThenCreate); plan-rollout.test.ts has the swap.
import { describe, expect, it } from "vitest";
import { encodeProxmoxEnv } from "../../src/gateway/env.js";
import { parseEnv } from "../../src/proxmox/normalize.js";
import type { ObservedContainer } from "../../src/reconcile/model.js";
import {
  DATABASE_DOWN,
  FAILING_PROBE,
  IMAGE_ENV,
  PASSING_PROBE,
  configFor,
  runningContainer,
  stoppedContainer,
} from "./fixtures.js";
import {
  NOW,
  ago,
  container,
  desiredOf,
  desiredServer,
  expectPlan,
  run,
  steadyWorld,
  withContainer,
  withServer,
  withStatusServer,
  type Expectation,
  type World,
} from "./plan-world.js";

type Row = [string, () => World, Expectation];

const RUNBOOK = { strategy: "RemoveThenCreate" } as const;
const steady = () => steadyWorld({ rollout: RUNBOOK });
/** The world after the spec's image changed to 1.5.0: both containers still run 1.4.0. */
function newImage(images?: Record<string, string[]>): World {
  const old = steady();
  const w = steadyWorld({ image: "ghcr.io/mieweb/ldap-gateway:1.5.0", rollout: RUNBOOK });
  const observed = {
    ...w.observed,
    servers: old.observed.servers,
    images: images ?? { pve1: [...old.observed.images["pve1"]!, desiredServer(w, "ldap1").imageVolume] },
  };
  return { ...w, observed, status: old.status };
}
/** The SQL URI rotated; the new env already written (pending) on the named servers. */
function rotatedPending(pendingOn: string[]): World {
  const w = steadyWorld({}, "postgres://manager:rotated@db.example.com:5432/manager");
  const old = steady();
  const servers = old.observed.servers.map((s) => {
    if (!pendingOn.includes(s.name)) return s;
    const env = encodeProxmoxEnv([...IMAGE_ENV, ...desiredServer(w, s.name).env]);
    return { ...s, containers: [{ ...s.containers[0]!, pending: { env } }] };
  });
  return { ...w, observed: { ...w.observed, servers } };
}
const failing = (c: ObservedContainer, uptimeSeconds = 3600): ObservedContainer => ({
  ...c,
  probe: FAILING_PROBE,
  uptimeSeconds,
});

describe("provisioning from nothing", () => {
  const empty = (images: Record<string, string[]> = { pve1: [] }): World => {
    const w = steady();
    return {
      ...w,
      status: {},
      observed: {
        ...w.observed,
        servers: w.observed.servers.map((s) => ({ ...s, containers: [] })),
        images,
        realm: {},
      },
    };
  };
  const rows: Row[] = [
    [
      "nothing observed yet (no server, no image listing): wait, pull nothing blindly",
      () => {
        const w = empty({});
        return { ...w, observed: { ...w.observed, servers: [], realm: undefined } };
      },
      {
        action: null,
        ready: false,
        reconciling: true,
        stalled: false,
        explanation: /image storage of node pve1 was not listed/,
      },
    ],
    [
      "no container, image not on the node: pull it, once for both servers on the node",
      () => empty(),
      {
        action: {
          kind: "PullImage",
          node: "pve1",
          storage: "local",
          reference: "ghcr.io/mieweb/ldap-gateway:1.4.0",
          volid: "local:vztmpl/ldap-gateway_1.4.0.tar",
        },
        phase: "Provisioning",
        events: ["PullingImage"],
        status: (s) =>
          expect(s.images).toEqual([{ node: "pve1", volid: "local:vztmpl/ldap-gateway_1.4.0.tar" }]),
      },
    ],
    [
      "image there, no container: create ldap1 stopped, with the spec's resources and tags",
      () => empty({ pve1: ["local:vztmpl/ldap-gateway_1.4.0.tar"] }),
      {
        action: {
          kind: "CreateContainer",
          server: "ldap1",
          node: "pve1",
          params: desiredOf(steady().spec).servers[0]!.create,
        },
        events: ["CreatingContainer"],
        status: (s) => expect(s.servers!.map((x) => x.state)).toEqual(["Absent", "Absent"]),
      },
    ],
    [
      "ldap1 being created (locked): ldap2 is created meanwhile",
      () => {
        const w = empty({ pve1: ["local:vztmpl/ldap-gateway_1.4.0.tar"] });
        return withContainer(w, "ldap1", {
          ...stoppedContainer(desiredServer(w, "ldap1"), 101, { fresh: true }),
          lock: "create",
        });
      },
      {
        action: { kind: "CreateContainer", server: "ldap2" },
        status: (s) => expect(s.servers![0]!.state).toBe("Creating"),
      },
    ],
    [
      "fresh from create (the image's env only): write the env, image variables first, ours winning",
      () => {
        const w = empty({ pve1: ["local:vztmpl/ldap-gateway_1.4.0.tar"] });
        return withContainer(w, "ldap1", stoppedContainer(desiredServer(w, "ldap1"), 101, { fresh: true }));
      },
      { action: { kind: "ConfigureEnv", server: "ldap1", vmid: 101 }, events: ["ConfiguringEnv"] },
    ],
    [
      "stopped and configured: start it (never gated, though ldap2 does not exist)",
      () => {
        const w = empty({ pve1: ["local:vztmpl/ldap-gateway_1.4.0.tar"] });
        return withContainer(w, "ldap1", stoppedContainer(desiredServer(w, "ldap1"), 101));
      },
      { action: { kind: "StartContainer", server: "ldap1", vmid: 101 }, events: ["StartingContainer"] },
    ],
    [
      "running without an address yet: create ldap2 meanwhile",
      () => {
        const w = empty({ pve1: ["local:vztmpl/ldap-gateway_1.4.0.tar"] });
        return withContainer(w, "ldap1", {
          ...runningContainer(desiredServer(w, "ldap1"), 101, { uptimeSeconds: 2 }),
          address: undefined,
          probe: undefined,
        });
      },
      {
        action: { kind: "CreateContainer", server: "ldap2" },
        status: (s) => expect(s.servers![0]!.state).toBe("Starting"),
      },
    ],
    [
      "both running, passed once: verify again soon, not Ready",
      () => {
        const w = steady();
        return {
          ...w,
          status: {
            ...w.status,
            servers: w.status.servers!.map((s) => ({
              ...s,
              passes: 0,
              healthy: false,
              healthySince: undefined,
            })),
          },
        };
      },
      {
        action: null,
        ready: false,
        reconciling: true,
        reason: "Verifying",
        requeueMs: 2_000,
        explanation: /passed 1 of 2 probes/,
      },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });

  it("writes the env as the image's variables then the operator's, against the config's digest", () => {
    const w = empty({ pve1: ["local:vztmpl/ldap-gateway_1.4.0.tar"] });
    const fresh = stoppedContainer(desiredServer(w, "ldap1"), 101, { fresh: true });
    const p = run(withContainer(w, "ldap1", fresh));
    if (p.action?.kind !== "ConfigureEnv") throw new Error("expected ConfigureEnv");
    expect(p.action.digest).toBe(fresh.config!.digest);
    expect(p.action.env).toBe(encodeProxmoxEnv([...IMAGE_ENV, ...desiredServer(w, "ldap1").env]));
    expect(p.status.servers![0]!.envKeys).toEqual(desiredServer(w, "ldap1").env.map(([k]) => k));
  });
});

describe("the steady pair", () => {
  it("does nothing and writes nothing: same status, no condition moves, no event", () => {
    const w = steady();
    const p = expectPlan(w, {
      action: null,
      ready: true,
      reconciling: false,
      stalled: false,
      phase: "Ready",
      onlyEvents: [],
    });
    const { conditions: _c, observedGeneration: _g, ...before } = w.status;
    expect(JSON.parse(JSON.stringify(p.status))).toEqual(before);
    for (const c of p.conditions) {
      const old = w.status.conditions!.find((x) => x.type === c.type)!;
      expect({ status: c.status, reason: c.reason, message: c.message }).toEqual({
        status: old.status,
        reason: old.reason,
        message: old.message,
      });
    }
    // Looks again when the next sync is due (in 50 min) or at the resync, whichever is first.
    expect(p.requeueAfterMs).toBe(10 * 60_000);
  });
});

describe("tiers behind the peer gate", () => {
  const rows: Row[] = [
    [
      "memory changed in the spec: updated in place on the running container, no gate, no downtime",
      () => {
        const old = steady();
        const w = steadyWorld({ resources: { memoryMiB: 1024 } });
        const servers = [
          old.observed.servers[0]!,
          { ...old.observed.servers[1]!, containers: [failing(container(old, "ldap2"))] },
        ];
        return { ...w, observed: { ...w.observed, servers } };
      },
      {
        action: { kind: "UpdateInPlace", server: "ldap1", vmid: 101, set: { memory: "1024" }, delete: [] },
        events: ["UpdatingInPlace"],
      },
    ],
    [
      "the new image is not pulled yet: pull it before anything goes down",
      () => newImage({ pve1: ["local:vztmpl/ldap-gateway_1.4.0.tar"] }),
      { action: { kind: "PullImage", volid: "local:vztmpl/ldap-gateway_1.5.0.tar" }, phase: "RollingUpdate" },
    ],
    [
      "new image pulled, peer healthy and settled: stop ldap1 (shutdown, forced after 10s)",
      () => newImage(),
      {
        action: { kind: "StopContainer", server: "ldap1", vmid: 101, timeoutSeconds: 10 },
        events: ["StoppingForRebuild"],
        phase: "RollingUpdate",
        status: (s) => {
          expect(s.servers![0]!.lastDownAt).toBe(NOW.toISOString());
          expect(s.rollout).toMatchObject({
            server: "ldap1",
            step: "Stop",
            targetImage: "ghcr.io/mieweb/ldap-gateway:1.5.0",
            previousImage: "ghcr.io/mieweb/ldap-gateway:1.4.0",
          });
        },
      },
    ],
    [
      "new image, peer failing its probe: wait, with the reason",
      () => withServer(newImage(), "ldap2", { containers: [failing(container(steady(), "ldap2"))] }),
      {
        action: null,
        ready: false,
        reconciling: true,
        stalled: false,
        reason: "WaitingForPeer",
        message: /ldap1 waits: its peer ldap2 fails its probe \(connect: connection refused\)/,
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "WaitingForPeer" }),
      },
    ],
    [
      "new image, ldap2 went down 20 s ago: wait out SSSD's window",
      () => withStatusServer(newImage(), "ldap2", { lastDownAt: ago(20) }),
      { action: null, reason: "WaitingForPeer", message: /went down 20s ago/, requeueMs: 5_000 },
    ],
    [
      "new image, ldap2 went down 42 s ago: look again when the settle time ends",
      () => withStatusServer(newImage(), "ldap2", { lastDownAt: ago(42) }),
      { action: null, requeueMs: 3_000 },
    ],
    [
      "new image, the database down: nothing is taken down, the reason shown",
      () => {
        const w = newImage();
        return { ...w, observed: { ...w.observed, database: DATABASE_DOWN } };
      },
      {
        action: null,
        reason: "WaitingForPeer",
        message: /the database preflight failed: database unreachable/,
      },
    ],
    [
      "new image, ldap1 already stopped: delete it (RemoveThenCreate)",
      () => {
        const w = newImage();
        return withContainer(w, "ldap1", { ...stoppedContainer(desiredServer(steady(), "ldap1"), 101) });
      },
      {
        action: { kind: "DeleteContainer", server: "ldap1", vmid: 101 },
        events: ["RemovingContainer"],
        phase: "RollingUpdate",
      },
    ],
    [
      "new image, ldap1 deleted: create it anew",
      () => withContainer(newImage(), "ldap1", undefined),
      {
        action: {
          kind: "CreateContainer",
          server: "ldap1",
          params: { ostemplate: "local:vztmpl/ldap-gateway_1.5.0.tar" },
        },
        phase: "RollingUpdate",
      },
    ],
    [
      "ldap1 rebuilt and verified, ldap2 on the old image, ldap1 went down 30 s ago: ldap2 waits",
      () => {
        const w = newImage();
        const rebuilt = runningContainer(desiredServer(w, "ldap1"), 103, { uptimeSeconds: 20 });
        return withStatusServer(withContainer(w, "ldap1", rebuilt), "ldap1", {
          vmid: 103,
          address: rebuilt.address!,
          lastDownAt: ago(30),
          passes: 2,
        });
      },
      { action: null, message: /ldap2 waits: a server went down 30s ago/ },
    ],
    [
      "the SQL URI rotated: the env is written at once (pending, no downtime, no gate)",
      () => {
        const w = steadyWorld({}, "postgres://manager:rotated@db.example.com:5432/manager");
        const old = steady();
        return withServer({ ...w, observed: { ...w.observed, servers: old.observed.servers } }, "ldap2", {
          containers: [failing(container(old, "ldap2"))],
        });
      },
      { action: { kind: "ConfigureEnv", server: "ldap1", vmid: 101 }, events: ["ConfiguringEnv"] },
    ],
    [
      "the new env pending on ldap1, not yet written on ldap2: ldap2's is written first (preflight)",
      () => rotatedPending(["ldap1"]),
      {
        action: { kind: "ConfigureEnv", server: "ldap2" },
        status: (s) => expect(s.rollout).toMatchObject({ server: "ldap1", step: "Preflight" }),
      },
    ],
    [
      "the new env pending on both, peer healthy: stop ldap1 so the start applies it",
      () => rotatedPending(["ldap1", "ldap2"]),
      { action: { kind: "StopContainer", server: "ldap1" }, events: ["StoppingForRestart"] },
    ],
    [
      "the new env pending on ldap1, peer failing: wait",
      () => {
        const w = steadyWorld({}, "postgres://manager:rotated@db.example.com:5432/manager");
        const old = steady();
        const pendingEnv = encodeProxmoxEnv([...IMAGE_ENV, ...desiredServer(w, "ldap1").env]);
        const servers = [
          {
            ...old.observed.servers[0]!,
            containers: [{ ...container(old, "ldap1"), pending: { env: pendingEnv } }],
          },
          { ...old.observed.servers[1]!, containers: [failing(container(w, "ldap2"))] },
        ];
        return { ...w, observed: { ...w.observed, servers } };
      },
      { action: null, reason: "WaitingForPeer" },
    ],
    [
      "restarted with the new env: the tags record the new config hash, in place",
      () => {
        const w = steadyWorld({}, "postgres://manager:rotated@db.example.com:5432/manager");
        const old = steady();
        const ldap1 = {
          ...container(old, "ldap1"),
          config: {
            ...configFor(desiredServer(w, "ldap1")),
            tags: String(container(old, "ldap1").config!.tags),
          },
        };
        return withContainer(w, "ldap1", ldap1);
      },
      {
        action: {
          kind: "UpdateInPlace",
          server: "ldap1",
          set: {
            tags: expect.stringContaining(
              `ldappair-config-${desiredServer(steadyWorld({}, "postgres://manager:rotated@db.example.com:5432/manager"), "ldap1").configHash}`,
            ),
          },
        },
      },
    ],
    [
      "rollout paused: the gated step waits, phase Paused, not Stalled",
      () => {
        const w = newImage();
        return { ...w, spec: { ...w.spec, rollout: { ...w.spec.rollout, paused: true } } };
      },
      { action: null, phase: "Paused", reason: "RolloutPaused", stalled: false, reconciling: true },
    ],
    [
      "the gate closed longer than rollout.progressDeadline: Stalled, still waiting",
      () => {
        const w = withServer(newImage(), "ldap2", { containers: [failing(container(steady(), "ldap2"))] });
        return {
          ...w,
          status: { ...w.status, rollout: { server: "ldap1", step: "WaitingForPeer", since: ago(11 * 60) } },
        };
      },
      {
        action: null,
        stalled: "ProgressDeadlineExceeded",
        reconciling: false,
        ready: false,
        phase: "Stalled",
        events: ["ProgressDeadlineExceeded"],
        message: /longer than rollout.progressDeadline 10m/,
      },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });

  it("keeps the rollout's step start while the step lasts", () => {
    const w = withServer(newImage(), "ldap2", { containers: [failing(container(steady(), "ldap2"))] });
    const since = ago(120);
    const p = run({
      ...w,
      status: { ...w.status, rollout: { server: "ldap1", step: "WaitingForPeer", since } },
    });
    expect(p.status.rollout?.since).toBe(since);
  });

  it("drops removed extra variables from the env it writes", () => {
    const w = steady();
    const ldap1 = container(w, "ldap1");
    const env = encodeProxmoxEnv([...IMAGE_ENV, ...desiredServer(w, "ldap1").env, ["LOG_LEVEL", "debug"]]);
    const world = withStatusServer(
      withContainer(w, "ldap1", { ...ldap1, status: "stopped", config: { ...ldap1.config!, env } }),
      "ldap1",
      { envKeys: ["LOG_LEVEL"] },
    );
    const p = run(world);
    if (p.action?.kind !== "ConfigureEnv") throw new Error(p.explanation);
    expect(parseEnv(p.action.env).has("LOG_LEVEL")).toBe(false);
    expect(parseEnv(p.action.env).get("PATH")).toBe(IMAGE_ENV[0]![1]);
  });
});

describe("drift and failures", () => {
  const rows: Row[] = [
    [
      "ldap1 stopped by someone: started again",
      () => withContainer(steady(), "ldap1", stoppedContainer(desiredServer(steady(), "ldap1"), 101)),
      {
        action: { kind: "StartContainer", server: "ldap1" },
        ready: false,
        phase: "Degraded",
        status: (s) =>
          expect(s.servers![0]).toMatchObject({
            state: "Stopped",
            healthy: false,
            lastDownAt: NOW.toISOString(),
          }),
      },
    ],
    [
      "ldap1 gone: recreated",
      () => withContainer(steady(), "ldap1", undefined),
      { action: { kind: "CreateContainer", server: "ldap1" }, ready: false },
    ],
    [
      "ldap1 moved to another node by hand: rebuilt where the spec says, behind the gate",
      () => withContainer(steady(), "ldap1", { ...container(steady(), "ldap1"), node: "pve2" }),
      { action: { kind: "StopContainer", server: "ldap1", node: "pve2" } },
    ],
    [
      "ldap1 fails its probe 1 min after its start: still within healthGateTimeout, verify",
      () => withContainer(steady(), "ldap1", failing(container(steady(), "ldap1"), 60)),
      {
        action: null,
        reason: "Verifying",
        requeueMs: 2_000,
        status: (s) => expect(s.servers![0]).toMatchObject({ failedStep: "connect", healthy: false }),
      },
    ],
    [
      "ldap1 fails its probe past healthGateTimeout, peer healthy: restarted behind the gate",
      () =>
        withStatusServer(withContainer(steady(), "ldap1", failing(container(steady(), "ldap1"))), "ldap1", {
          healthy: false,
          lastDownAt: ago(400),
        }),
      { action: { kind: "StopContainer", server: "ldap1" }, events: ["RestartingUnhealthy"] },
    ],
    [
      "ldap1 fails past healthGateTimeout, ldap2 fails too (the database?): nothing is restarted",
      () => {
        const w = steady();
        const servers = w.observed.servers.map((s) => ({ ...s, containers: [failing(s.containers[0]!)] }));
        const status = {
          ...w.status,
          servers: w.status.servers!.map((s) => ({ ...s, healthy: false, lastDownAt: ago(400) })),
        };
        return { ...w, status, observed: { ...w.observed, servers, database: DATABASE_DOWN } };
      },
      { action: null, ready: false, message: /database unreachable/ },
    ],
    [
      "ldap1 fails past healthGateTimeout, a restart failed 5 s ago: backoff",
      () => {
        const w = withStatusServer(
          withContainer(steady(), "ldap1", failing(container(steady(), "ldap1"))),
          "ldap1",
          { healthy: false, lastDownAt: ago(400) },
        );
        return {
          ...w,
          status: {
            ...w.status,
            lastFailure: {
              action: "StopContainer",
              server: "ldap1",
              time: ago(5),
              attempts: 1,
              message: "stop ldap1 failed",
              reason: "StopFailed",
            },
          },
        };
      },
      { action: null, requeueMs: 5_000, explanation: /retrying in 5s/ },
    ],
    [
      "a healthy server just began failing: the time it went down is recorded",
      () => withContainer(steady(), "ldap2", failing(container(steady(), "ldap2"), 7200)),
      {
        action: null,
        status: (s) =>
          expect(s.servers![1]).toMatchObject({
            healthy: false,
            lastDownAt: NOW.toISOString(),
            lastProbeTime: ago(0),
          }),
      },
    ],
    [
      "a second container of ours for ldap1, stopped: the extra is deleted, the kept one untouched",
      () =>
        withServer(steady(), "ldap1", {
          containers: [container(steady(), "ldap1"), stoppedContainer(desiredServer(steady(), "ldap1"), 150)],
        }),
      { action: { kind: "DeleteContainer", server: "ldap1", vmid: 150 }, events: ["RemovingDuplicate"] },
    ],
    [
      "a second running container for ldap1 with an old config: stopped (ldap1 still serves)",
      () =>
        withServer(steady(), "ldap1", {
          containers: [
            container(steady(), "ldap1"),
            { ...container(steady(), "ldap1"), vmid: 150, configHash: "0000000000000000" },
          ],
        }),
      { action: { kind: "StopContainer", server: "ldap1", vmid: 150 } },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });
});

describe("conflicts: nothing of anyone else's is touched", () => {
  const rows: Row[] = [
    [
      "a container we do not own has the hostname ldap1: Conflict names it, ldap1 is left alone",
      () =>
        withServer(withContainer(steady(), "ldap1", undefined), "ldap1", {
          foreign: [{ vmid: 120, node: "pve2", hostname: "ldap1" }],
        }),
      {
        action: null,
        ready: false,
        stalled: "ContainerConflict",
        conflict: "ContainerConflict",
        reconciling: false,
        phase: "Stalled",
        message: /CT 120 on pve2 has the hostname ldap1 but is not this LdapPair's/,
        events: ["ContainerConflict"],
        status: (s) => expect(s.servers![0]!.state).toBe("Conflict"),
      },
    ],
    [
      "a foreign ldap1 and no ldap2 yet: ldap2 is still provisioned",
      () => {
        const w = withServer(withContainer(steady(), "ldap1", undefined), "ldap1", {
          foreign: [{ vmid: 120, node: "pve1", hostname: "ldap1" }],
        });
        return withContainer(w, "ldap2", undefined);
      },
      {
        action: { kind: "CreateContainer", server: "ldap2" },
        conflict: "ContainerConflict",
        stalled: "ContainerConflict",
      },
    ],
    [
      "ldap1's static address is used by another container: not created",
      () => {
        const w = steadyWorld({
          servers: [
            { name: "ldap1", network: { ipv4: "10.0.0.5/24" } },
            { name: "ldap2", network: { ipv4: "10.0.0.6/24" } },
          ],
        });
        return withServer(withContainer(w, "ldap1", undefined), "ldap1", {
          addressTaken: { address: "10.0.0.5", vmid: 130, node: "pve1" },
        });
      },
      {
        action: null,
        stalled: "AddressInUse",
        conflict: "AddressInUse",
        message: /10\.0\.0\.5 is already used by CT 130 on pve1/,
      },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    const p = expectPlan(w(), e);
    if (p.action && "vmid" in p.action) expect([120, 130]).not.toContain(p.action.vmid);
  });

  it("does not repeat the conflict's Warning while it lasts", () => {
    const w = withServer(withContainer(steady(), "ldap1", undefined), "ldap1", {
      foreign: [{ vmid: 120, node: "pve2", hostname: "ldap1" }],
    });
    const first = run(w);
    const again = run({
      ...w,
      status: {
        ...w.status,
        conditions: first.conditions.map((c) => ({ ...c, lastTransitionTime: ago(0) })),
      },
    });
    expect(again.events.map((e) => e.reason)).not.toContain("ContainerConflict");
  });
});

describe("observation contradicts status: Proxmox wins", () => {
  const rows: Row[] = [
    [
      "status says ldap1 runs as CT 101, Proxmox has no container: recreated, vmid dropped",
      () => withContainer(steady(), "ldap1", undefined),
      {
        action: { kind: "CreateContainer", server: "ldap1" },
        status: (s) => expect(s.servers![0]).toMatchObject({ state: "Absent", healthy: false }),
      },
    ],
    [
      "status says CT 101, Proxmox shows ldap1 as CT 205: CT 205 is ldap1",
      () => withContainer(steady(), "ldap1", { ...container(steady(), "ldap1"), vmid: 205 }),
      { action: null, status: (s) => expect(s.servers![0]!.vmid).toBe(205) },
    ],
    [
      "status says healthy, the probe fails: not healthy, not Ready",
      () => withContainer(steady(), "ldap1", failing(container(steady(), "ldap1"), 60)),
      { ready: false, status: (s) => expect(s.servers![0]!.healthy).toBe(false) },
    ],
    [
      "status says ldap1 unhealthy, both probes pass twice: Ready",
      () => withStatusServer(steady(), "ldap1", { healthy: false, passes: 1 }),
      { ready: true, action: null },
    ],
    [
      "status records another address: the streak starts over on the new one",
      () =>
        withContainer(steady(), "ldap1", {
          ...container(steady(), "ldap1"),
          address: "10.0.0.77",
          probe: PASSING_PROBE,
        }),
      {
        ready: false,
        reason: "Verifying",
        status: (s) => expect(s.servers![0]).toMatchObject({ address: "10.0.0.77", passes: 1 }),
      },
    ],
  ];
  it.each(rows)("%s", (_name, w, e) => {
    expectPlan(w(), e);
  });

  it("keeps the time of the first probe pass while it keeps passing", () => {
    const w = steady();
    expect(run(w).status.servers![0]!.healthySince).toBe(w.status.servers![0]!.healthySince);
    void NOW;
  });
});
