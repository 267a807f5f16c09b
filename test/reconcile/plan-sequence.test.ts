// The planner driven to the end against a small model of Proxmox
// (site-model.ts): from nothing to Ready; an image rollout with each strategy,
// one server at a time, never both down, the second only after the settle
// time; an env restart in place; a health gate that fails, with and without
// autoRollback; pause and resume; a restart on request; a new image in the
// middle of a rollout. The model checks at every step that both servers are
// never down at once, that no server has two running containers, and that
// nothing not the pair's is touched. Proves the table converges, not only its rows.
import { describe, expect, it } from "vitest";
import type { LdapPairSpec, LdapPairStatus, RolloutStrategy } from "../../src/api/ldappair.js";
import { parseEnv } from "../../src/proxmox/normalize.js";
import { parseTags } from "../../src/proxmox/tags.js";
import { PAUSED_ANNOTATION, type Action } from "../../src/reconcile/model.js";
import { IMAGE_ENV, META } from "./fixtures.js";
import { desiredOf } from "./plan-world.js";
import { FOREIGN_VMID, Site, drive, expectConverged, type Run } from "./site-model.js";
import { specWith } from "../support/spec.js";

const V14 = "ghcr.io/mieweb/ldap-gateway:1.4.0";
const V15 = "ghcr.io/mieweb/ldap-gateway:1.5.0";
const V16 = "ghcr.io/mieweb/ldap-gateway:1.6.0";
const VOL15_ = "local:vztmpl/ldap-gateway_1.5.0.tar";
const STRATEGIES: RolloutStrategy[] = ["RemoveThenCreate", "CreateThenSwap"];

const spec = (strategy: RolloutStrategy, over: Record<string, unknown> = {}, rollout = {}) =>
  specWith({ rollout: { strategy, ...rollout }, ...over });

/** A pair at Ready on 1.4.0, an hour later (the next sync is not due before the rollout ends). */
function readyPair(
  strategy: RolloutStrategy,
  rollout = {},
  site = new Site(),
  over: Record<string, unknown> = {},
): { site: Site; status: LdapPairStatus } {
  const first = drive(site, spec(strategy, over, rollout), {});
  expect(first.ended, site.log.join(", ")).toBe(true);
  site.now += 3_000_000;
  site.log = [];
  return { site, status: first.status };
}

const stalledWith = (reason: string) => (_p: unknown, s: LdapPairStatus) =>
  s.conditions?.some((c) => c.type === "Stalled" && c.status === "True" && c.reason === reason) === true;

const ROLLOUT_LOG: Record<RolloutStrategy, string[]> = {
  RemoveThenCreate: [
    "PullImage",
    "StopContainer ldap1",
    "DeleteContainer ldap1",
    "CreateContainer ldap1",
    "ConfigureEnv ldap1",
    "StartContainer ldap1",
    "StopContainer ldap2",
    "DeleteContainer ldap2",
    "CreateContainer ldap2",
    "ConfigureEnv ldap2",
    "StartContainer ldap2",
    "SyncRealm",
  ],
  CreateThenSwap: [
    "PullImage",
    "CreateContainer ldap1",
    "ConfigureEnv ldap1",
    "CreateContainer ldap2",
    "ConfigureEnv ldap2",
    "StopContainer ldap1",
    "StartContainer ldap1",
    "DeleteContainer ldap1",
    "StopContainer ldap2",
    "StartContainer ldap2",
    "DeleteContainer ldap2",
    "SyncRealm",
  ],
};

describe("the planner driven to the end", () => {
  it("provisions a pair from nothing to Ready, each thing once", () => {
    const site = new Site();
    const result = drive(site, specWith(), {});
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(site.log.filter((a) => a === "PullImage")).toHaveLength(1);
    expect(site.log.filter((a) => a.startsWith("CreateContainer"))).toEqual([
      "CreateContainer ldap1",
      "CreateContainer ldap2",
    ]);
    expect(site.log.filter((a) => a === "CreateRealm")).toHaveLength(1);
    expect(site.log.at(-1)).toBe("SyncRealm");
    expectConverged(site, specWith());
    const env = parseEnv(String(site.cts.get(101)!.config["env"]));
    expect(env.get("LDAP_COMMON_NAME")).toBe("ldap1");
    expect(env.get("PATH")).toBe(IMAGE_ENV[0]![1]);
    expect(result.status.realm).toMatchObject({ syncState: "Synced", usersImported: 1, groupsImported: 1 });
    expect(result.status.phase).toBe("Ready");
  });

  it("changes memory in place: no stop at all", () => {
    const { site, status } = readyPair("RemoveThenCreate");
    const result = drive(site, spec("RemoveThenCreate", { resources: { memoryMiB: 1024 } }), status);
    expect(result.ended).toBe(true);
    expect(site.log).toEqual(["UpdateInPlace ldap1", "UpdateInPlace ldap2"]);
    expect(result.downs).toEqual([]);
  });
});

describe.each(STRATEGIES)("an image rollout with %s", (strategy) => {
  it("rolls one server at a time: never both down, the second after the settle time, then a sync", () => {
    const { site, status } = readyPair(strategy);
    const steps = new Set<string>();
    const result = drive(site, spec(strategy, { image: V15 }), status, {
      onPlan: (p) => {
        if (p.status.rollout?.step) steps.add(`${p.status.rollout.server} ${p.status.rollout.step}`);
      },
    });
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(site.log).toEqual(ROLLOUT_LOG[strategy]);
    expect(site.failedTasks).toEqual([]);
    expect(result.downs.map((d) => d.server)).toEqual(["ldap1", "ldap2"]);
    expect(result.downs[1]!.at - result.downs[0]!.at).toBeGreaterThanOrEqual(45_000);
    expectConverged(site, spec(strategy, { image: V15 }));
    expect(result.status.realm?.lastSyncReason).toBe("ServerRebuilt");
    expect(result.status.rollout).toBeUndefined();
    expect(result.status.servers!.map((s) => s.image)).toEqual([V15, V15]);
    // The progress kubectl shows: each server's steps, then the sync.
    expect(steps).toEqual(expect.objectContaining({}));
    for (const step of [
      "ldap1 Preflight",
      "ldap1 Stop",
      "ldap1 Verify",
      "ldap2 WaitingForPeer",
      "ldap2 RealmSync",
    ])
      expect([...steps]).toContain(step);
    const rolling = result.plans.filter((p) => p.status.rollout?.server);
    expect(
      rolling.every((p) => p.status.rollout!.targetImage === V15 && p.status.rollout!.strategy === strategy),
    ).toBe(true);
    expect(rolling.find((p) => p.status.rollout!.server === "ldap1")!.status.rollout!.previousImage).toBe(
      V14,
    );
  });

  it("is RollingUpdate with its server and step throughout, tasks in flight and the last sync included", () => {
    const { site, status } = readyPair(strategy, {}, new Site({ taskMs: 1_500 }));
    const result = drive(site, spec(strategy, { image: V15 }), status);
    expect(result.ended).toBe(true);
    const during = result.plans.slice(0, -1);
    expect(during.map((p) => p.status.phase).filter((p) => p !== "RollingUpdate")).toEqual([]);
    expect(during.every((p) => p.status.rollout?.server && p.status.rollout.step)).toBe(true);
    expect(result.plans.at(-1)!.status.phase).toBe("Ready");
    // A task keeps the step the plan that started it named: a swap's clean-up is no rebuild's removal.
    const steps = new Set(during.map((p) => p.status.rollout!.step));
    expect(steps.has("Remove")).toBe(strategy === "RemoveThenCreate");
    expect(steps.has("Cleanup")).toBe(strategy === "CreateThenSwap");
  });

  it("keeps the old container stopped until the new one passes (CreateThenSwap), or rebuilds in place", () => {
    const { site, status } = readyPair(strategy);
    let sawOldKept = false;
    drive(site, spec(strategy, { image: V15 }), status, {
      onPlan: () => {
        const ldap1 = site.layout()["ldap1"] ?? [];
        if (
          ldap1.length === 2 &&
          ldap1.some(([, , s]) => s === "running") &&
          ldap1.some(([, , s]) => s === "stopped")
        )
          sawOldKept ||= ldap1.find(([, , s]) => s === "stopped")![1].endsWith("1.4.0.tar");
      },
    });
    expect(sawOldKept).toBe(strategy === "CreateThenSwap");
  });

  it("restarts for an env change in place, one server at a time, and records the new hash in the tags", () => {
    const { site, status } = readyPair(strategy);
    site.now -= 2_400_000; // within the sync interval: no periodic sync in the way
    const changed = spec(strategy, { extraEnv: [{ name: "LOG_LEVEL", value: "debug" }] });
    const result = drive(site, changed, status);
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(site.log).toEqual([
      "ConfigureEnv ldap1",
      "ConfigureEnv ldap2",
      "StopContainer ldap1",
      "StartContainer ldap1",
      "UpdateInPlace ldap1",
      "StopContainer ldap2",
      "StartContainer ldap2",
      "UpdateInPlace ldap2",
    ]);
    expect(result.downs[1]!.at - result.downs[0]!.at).toBeGreaterThanOrEqual(45_000);
    expectConverged(site, changed);
    expect([...site.cts.keys()].filter((v) => v !== FOREIGN_VMID)).toEqual([101, 102]);
  });

  it("halts on a health gate that never passes: the peer untouched and serving, Stalled, Degraded", () => {
    const { site, status } = readyPair(strategy);
    const ldap2 = { ...site.cts.get(102)! };
    site.badImages.add("local:vztmpl/ldap-gateway_1.5.0.tar");
    const result = drive(site, spec(strategy, { image: V15 }), status, {
      until: stalledWith("HealthGateFailed"),
    });
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(result.status.phase).toBe("Degraded");
    const stalled = result.status.conditions!.find((c) => c.type === "Stalled")!;
    expect(stalled.message).toMatch(
      /ldap1 failed its health gate on ghcr.io\/mieweb\/ldap-gateway:1.5.0.*step connect/,
    );
    expect(stalled.message).toMatch(/ldap2 is untouched and serves ghcr.io\/mieweb\/ldap-gateway:1.4.0/);
    expect(
      result.plans.flatMap((p) => p.events).filter((e) => e.reason === "HealthGateFailed")[0]?.type,
    ).toBe("Warning");
    expect(result.status.rollout?.failure).toMatchObject({
      server: "ldap1",
      image: V15,
      failedStep: "connect",
    });
    // More looks change nothing: the rollout holds.
    const log = [...site.log];
    const held = drive(site, spec(strategy, { image: V15 }), result.status, {
      maxSteps: 20,
      until: () => false,
    });
    expect(site.log).toEqual(log);
    expect(held.plans.every((p) => p.action === undefined)).toBe(true);
    expect(site.cts.get(102)).toEqual(ldap2);
    expect(site.serving()).toEqual(["ldap2"]);
    // A fixed image goes on from there.
    const fixed = drive(site, spec(strategy, { image: V16 }), held.status);
    expect(fixed.ended, site.log.join(", ")).toBe(true);
    expectConverged(site, spec(strategy, { image: V16 }));
  });

  it("rolls back with autoRollback, and says so and to what", () => {
    const { site, status } = readyPair(strategy, { autoRollback: true });
    const ldap2 = { ...site.cts.get(102)! };
    site.badImages.add("local:vztmpl/ldap-gateway_1.5.0.tar");
    const rolled = spec(strategy, { image: V15 }, { autoRollback: true });
    const result = drive(site, rolled, status, { until: stalledWith("RolledBack") });
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(result.status.rollout?.failure?.rollback).toMatchObject({ state: "RolledBack", image: V14 });
    expect(result.status.conditions!.find((c) => c.type === "Ready")!.message).toMatch(
      /ldap1 failed its health gate on .*1\.5\.0.* and was rolled back to .*1\.4\.0/,
    );
    expect(result.status.phase).toBe("Degraded");
    const events = result.plans.flatMap((p) => p.events.map((e) => e.reason));
    expect(events).toEqual(expect.arrayContaining(["HealthGateFailed", "RollingBack", "RolledBack"]));
    // More looks: the rollout holds; ldap2's new container from the preflight, never started, goes.
    const held = drive(site, rolled, result.status, { maxSteps: 30, until: () => false });
    expect(held.plans.slice(-10).every((p) => p.action === undefined)).toBe(true);
    expect(site.cts.get(102)).toEqual(ldap2);
    expect(site.layout()).toEqual({
      ldap1: [
        [
          strategy === "CreateThenSwap" ? 101 : expect.any(Number),
          "local:vztmpl/ldap-gateway_1.4.0.tar",
          "running",
        ],
      ],
      ldap2: [[102, "local:vztmpl/ldap-gateway_1.4.0.tar", "running"]],
    });
    expect(held.status.phase).toBe("Degraded");
    expect(site.serving().sort()).toEqual(["ldap1", "ldap2"]);
    const start = site.log.lastIndexOf("StartContainer ldap1");
    if (strategy === "CreateThenSwap")
      // One start of the kept old container: the one that failed is stopped first, deleted after.
      expect(site.log.slice(start - 1, start + 2)).toEqual([
        "StopContainer ldap1",
        "StartContainer ldap1",
        "DeleteContainer ldap1",
      ]);
    // A rebuild from the previous image: stop, delete, create, configure, start.
    else
      expect(site.log.slice(start - 4, start + 1)).toEqual([
        "StopContainer ldap1",
        "DeleteContainer ldap1",
        "CreateContainer ldap1",
        "ConfigureEnv ldap1",
        "StartContainer ldap1",
      ]);
  });

  it("halts on the last server too: ldap1, already rolled, untouched and serving the new version", () => {
    const { site, status } = readyPair(strategy);
    site.badImages.add(VOL15_);
    site.badOnlyFor = "ldap2";
    const halted = drive(site, spec(strategy, { image: V15 }), status, {
      until: stalledWith("HealthGateFailed"),
    });
    expect(halted.ended, site.log.join(", ")).toBe(true);
    expect(halted.status.rollout?.failure).toMatchObject({ server: "ldap2", previousImage: V14 });
    expect(halted.status.conditions!.find((c) => c.type === "Stalled")!.message).toMatch(
      /ldap1 is untouched and serves ghcr.io\/mieweb\/ldap-gateway:1.5.0/,
    );
    // autoRollback set afterwards: ldap2 goes back to 1.4.0, ldap1 stays on 1.5.0.
    const target = spec(strategy, { image: V15 }, { autoRollback: true });
    const result = drive(site, target, halted.status, { until: stalledWith("RolledBack") });
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(result.status.rollout?.failure?.rollback).toMatchObject({ state: "RolledBack", image: V14 });
    expect(site.layout()["ldap1"]!.map(([, volid, s]) => [volid, s])).toEqual([[VOL15_, "running"]]);
    expect(site.layout()["ldap2"]!.map(([, volid, s]) => [volid, s])).toEqual([
      ["local:vztmpl/ldap-gateway_1.4.0.tar", "running"],
    ]);
    expect(site.serving().sort()).toEqual(["ldap1", "ldap2"]);
  });

  it("pauses between steps, never in the middle of one, and resumes from the same step", () => {
    const { site, status } = readyPair(strategy);
    const target = spec(strategy, { image: V15 });
    // Paused once ldap1 has gone down: ldap1 comes back, ldap2 is not touched.
    const toPause = drive(site, target, status, {
      until: (p) => p.action?.kind === "StopContainer" && p.action.server === "ldap1",
    });
    const paused = { ...target, rollout: { ...target.rollout, paused: true } };
    const ldap2 = { ...site.cts.get(102)! };
    const held = drive(site, paused, toPause.status, { maxSteps: 60, until: () => false });
    expect(site.cts.get(102)).toEqual(ldap2);
    expect(site.serving().sort()).toEqual(["ldap1", "ldap2"]);
    expect(held.status.phase).toBe("Paused");
    expect(held.status.conditions!.find((c) => c.type === "Stalled")!.status).toBe("False");
    expect(held.status.rollout).toMatchObject({ server: "ldap2", step: "Paused" });
    // The annotation holds it the same way.
    const annotated = drive(site, target, held.status, {
      maxSteps: 10,
      until: () => false,
      metaAt: () => ({ ...META, annotations: { [PAUSED_ANNOTATION]: "true" } }),
    });
    expect(site.cts.get(102)).toEqual(ldap2);
    const resumed = drive(site, target, annotated.status);
    expect(resumed.ended, site.log.join(", ")).toBe(true);
    expectConverged(site, target);
    expect(site.log.filter((a) => a === "StopContainer ldap2")).toHaveLength(1);
  });

  it("restarts on request: rollout.restartedAt rebuilds both through the gates, a pinned tag not pulled again", () => {
    const { site, status } = readyPair(strategy);
    const restarted = spec(strategy, {}, { restartedAt: "2026-12-02T08:00:00Z" });
    const result = drive(site, restarted, status);
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(site.log).not.toContain("PullImage");
    expect(result.downs.map((d) => d.server)).toEqual(["ldap1", "ldap2"]);
    expect(result.downs[1]!.at - result.downs[0]!.at).toBeGreaterThanOrEqual(45_000);
    expectConverged(site, restarted);
    expect([...site.cts.keys()]).not.toContain(101);
  });

  it("restarts a mutable tag by pulling it again under a new volume name", () => {
    const latest = "ghcr.io/mieweb/ldap-gateway:latest";
    const site = new Site();
    const first = drive(site, spec(strategy, { image: latest }), {});
    site.now += 3_000_000;
    site.log = [];
    const restarted = spec(strategy, { image: latest }, { restartedAt: "2026-12-02T08:00:00Z" });
    const result = drive(site, restarted, first.status);
    expect(result.ended, site.log.join(", ")).toBe(true);
    expect(site.log.filter((a) => a === "PullImage")).toHaveLength(1);
    expect(site.images["pve1"]).toEqual([
      "local:vztmpl/ldap-gateway_latest.tar",
      "local:vztmpl/ldap-gateway_latest-r20261202T080000Z.tar",
    ]);
    expect(site.failedTasks).toEqual([]);
    expectConverged(site, restarted);
    // The next restart pulls again; the volume of this one, no longer used, is removed (Ready throughout).
    site.log = [];
    const again = spec(strategy, { image: latest }, { restartedAt: "2026-12-03T08:00:00Z" });
    const second = drive(site, again, result.status, {
      until: (p, s) =>
        !p.action &&
        !s.task &&
        s.conditions?.find((c) => c.type === "Ready")?.status === "True" &&
        site.log.includes("DeleteImage"),
    });
    expect(second.ended, site.log.join(", ")).toBe(true);
    expect(site.log.at(-1)).toBe("DeleteImage");
    const cleanup = second.plans.find((p) => p.action?.kind === "DeleteImage")!;
    expect(cleanup.action).toMatchObject({ volid: "local:vztmpl/ldap-gateway_latest-r20261202T080000Z.tar" });
    expect(cleanup.conditions.find((c) => c.type === "Ready")!.status).toBe("True");
    expect(site.images["pve1"]).toEqual([
      "local:vztmpl/ldap-gateway_latest.tar",
      "local:vztmpl/ldap-gateway_latest-r20261203T080000Z.tar",
    ]);
    const last = drive(site, again, second.status, { maxSteps: 3, until: () => false });
    expect(last.status.images!.map((i) => i.volid)).toEqual([
      "local:vztmpl/ldap-gateway_latest.tar",
      "local:vztmpl/ldap-gateway_latest-r20261203T080000Z.tar",
    ]);
    expect(last.status.phase).toBe("Ready");
  });

  it("takes a new image in the middle of a rollout: finishes the step, then converges on the newest", () => {
    const { site, status } = readyPair(strategy);
    let changedAt: number | undefined;
    const result = drive(site, spec(strategy, { image: V15 }), status, {
      // ldap1 is verified on 1.5.0 (the intermediate version) when 1.6.0 comes.
      specAt: (step) => {
        const ldap1 = site.layout()["ldap1"] ?? [];
        const on15 = ldap1.some(
          ([vmid, volid]) => volid.endsWith("1.5.0.tar") && site.healthy(site.cts.get(vmid)!),
        );
        if (
          changedAt === undefined &&
          on15 &&
          site.now - site.cts.get(ldap1.find(([, v]) => v.endsWith("1.5.0.tar"))![0])!.startedAt! > 10_000
        )
          changedAt = step;
        return spec(strategy, { image: changedAt !== undefined ? V16 : V15 });
      },
    });
    expect(changedAt).toBeDefined();
    expect(result.ended, site.log.join(", ")).toBe(true);
    expectConverged(site, spec(strategy, { image: V16 }));
    // ldap1 was rolled twice (1.5.0, then 1.6.0), ldap2 once, straight to 1.6.0.
    expect(result.downs.map((d) => d.server)).toEqual(["ldap1", "ldap1", "ldap2"]);
    expect(site.failedTasks).toEqual([]);
  });

  it("takes a new image while a server is down: that server is built on the newest, never both down", () => {
    const { site, status } = readyPair(strategy);
    let stopped = false;
    const result = drive(site, spec(strategy, { image: V15 }), status, {
      specAt: () => spec(strategy, { image: stopped ? V16 : V15 }),
      onPlan: (p) => void (stopped ||= p.action?.kind === "StopContainer"),
    });
    expect(result.ended, site.log.join(", ")).toBe(true);
    expectConverged(site, spec(strategy, { image: V16 }));
    expect(result.downs.map((d) => d.server)).toEqual(["ldap1", "ldap2"]);
  });
});

describe.each(STRATEGIES)(
  "preflight with %s: a broken configuration never takes a working server down",
  (strategy) => {
    const twoNodes = {
      servers: [
        { name: "ldap1", node: "pve1" },
        { name: "ldap2", node: "pve2" },
      ],
    };
    const faults: Record<string, (a: Action) => string | undefined> = {
      "the new image cannot be pulled on ldap2's node": (a) =>
        a.kind === "PullImage" && a.node === "pve2" && a.volid.includes("1.5.0")
          ? "manifest unknown"
          : undefined,
      "Proxmox refuses ldap2's new container (CreateThenSwap makes it first)": (a) =>
        a.kind === "CreateContainer" && a.server === "ldap2" && String(a.params.ostemplate).includes("1.5.0")
          ? "unable to create CT: storage full"
          : undefined,
    };
    it.each(Object.keys(faults))("%s", (name) => {
      const site = new Site({ failTask: faults[name] });
      const { status } = readyPair(strategy, {}, site, twoNodes);
      expect(site.layout()["ldap2"]![0]![0]).toBe(102);
      const result = drive(site, spec(strategy, { image: V15, ...twoNodes }), status, {
        maxSteps: 120,
        until: () => false,
      });
      const pullOnly = name.startsWith("the new image");
      if (!pullOnly && strategy === "RemoveThenCreate") {
        // RemoveThenCreate makes no container before one goes down: the refusal is met when ldap2's turn comes.
        expect(result.downs.map((d) => d.server)[0]).toBe("ldap1");
        return;
      }
      expect(result.downs, site.log.join(", ")).toEqual([]);
      expect(site.serving().sort()).toEqual(["ldap1", "ldap2"]);
      const last = result.plans.at(-1)!;
      expect(last.status.rollout).toMatchObject({ server: "ldap1", step: "Preflight" });
      expect(last.conditions.find((c) => c.type === "Stalled")).toMatchObject({ status: "True" });
    });
  },
);

describe.each(STRATEGIES)(
  "killed at any moment (%s): the next operator finishes from what Proxmox shows",
  (strategy) => {
    // The clean rollout, with tasks that run across a look: how many plans it takes.
    const clean = (): Run => {
      const { site, status } = readyPair(strategy, {}, new Site({ taskMs: 1_500 }));
      return drive(site, spec(strategy, { image: V15 }), status);
    };
    const steps = clean().steps;

    it.each(Array.from({ length: steps }, (_, i) => i + 1))("the status write of step %i lost", (lost) => {
      const { site, status } = readyPair(strategy, {}, new Site({ taskMs: 1_500 }));
      const target = spec(strategy, { image: V15 });
      const result = drive(site, target, status, { loseWriteAt: lost });
      expect(result.ended, `${site.log.join(", ")}`).toBe(true);
      expectConverged(site, target);
      // Nothing skipped: each server was taken down once, for its own rollout.
      expect(new Set(result.downs.map((d) => d.server))).toEqual(new Set(["ldap1", "ldap2"]));
      expect(site.log.filter((a) => a.startsWith("CreateContainer"))).toHaveLength(2);
    });

    const envChange = () => spec(strategy, { extraEnv: [{ name: "LOG_LEVEL", value: "debug" }] });
    const restartSteps = (() => {
      const { site, status } = readyPair(strategy, {}, new Site({ taskMs: 1_500 }));
      return drive(site, envChange(), status).steps;
    })();

    it.each(Array.from({ length: restartSteps }, (_, i) => i + 1))(
      "an env restart, the status write of step %i lost",
      (lost) => {
        const { site, status } = readyPair(strategy, {}, new Site({ taskMs: 1_500 }));
        const result = drive(site, envChange(), status, { loseWriteAt: lost });
        expect(result.ended, `${site.log.join(", ")}`).toBe(true);
        expectConverged(site, envChange());
        expect([...site.cts.keys()].filter((v) => v !== FOREIGN_VMID).sort()).toEqual([101, 102]);
      },
    );

    // From the last step before the health gate fails to the end of the rollback, each write lost in turn.
    const failing = () => {
      const { site, status } = readyPair(strategy, { autoRollback: true }, new Site({ taskMs: 1_500 }));
      site.badImages.add("local:vztmpl/ldap-gateway_1.5.0.tar");
      return { site, status, target: spec(strategy, { image: V15 }, { autoRollback: true }) };
    };
    const { site: s0, status: st0, target: t0 } = failing();
    const failed = drive(s0, t0, st0, { until: stalledWith("RolledBack") });
    const gateStep = failed.plans.findIndex((p) => p.events.some((e) => e.reason === "HealthGateFailed")) + 1;
    const around = Array.from({ length: failed.steps - gateStep + 2 }, (_, i) => gateStep - 1 + i);

    it.each(around)("a failed health gate, the write of step %i lost: rolled back all the same", (lost) => {
      const { site, status, target } = failing();
      const result = drive(site, target, status, { loseWriteAt: lost, until: stalledWith("RolledBack") });
      expect(result.ended, `${site.log.join(", ")}`).toBe(true);
      const held = drive(site, target, result.status, { maxSteps: 30, until: () => false });
      expect(held.plans.slice(-10).every((p) => p.action === undefined)).toBe(true);
      expect(site.serving().sort()).toEqual(["ldap1", "ldap2"]);
      expect(site.layout()["ldap2"]).toEqual([[102, "local:vztmpl/ldap-gateway_1.4.0.tar", "running"]]);
      expect(site.layout()["ldap1"]!.map(([, volid, s]) => [volid, s])).toEqual([
        ["local:vztmpl/ldap-gateway_1.4.0.tar", "running"],
      ]);
      expect(site.touched).not.toContain(FOREIGN_VMID);
    });
  },
);

describe("spec and status as kubectl shows them", () => {
  it("a rollout in flight is RollingUpdate, with the server and the step", () => {
    const { site, status } = readyPair("RemoveThenCreate");
    const result = drive(site, spec("RemoveThenCreate", { image: V15 }), status, {
      until: (p) => p.action?.kind === "CreateContainer",
    });
    expect(result.status.phase).toBe("RollingUpdate");
    expect(result.status.rollout).toMatchObject({
      server: "ldap1",
      step: "Create",
      previousImage: V14,
      targetImage: V15,
    });
    expect(parseTags(String(site.cts.get(102)!.config["tags"])).configHashes).toEqual([
      desiredOf(spec("RemoveThenCreate")).servers[1]!.configHash,
    ]);
  });
});

export type { LdapPairSpec };
