// Rollouts that must not go through, end to end, for each strategy, with the
// invariants watched throughout (invariants.ts):
//   - a new image that never becomes healthy (its process never listens):
//     the rollout halts on ldap1, Stalled with HealthGateFailed and the
//     failed step, phase Degraded, a Warning; ldap2 untouched and serving;
//   - the same with autoRollback (an image that serves no user): ldap1 goes
//     back to the previous image (CreateThenSwap: its kept old container
//     started again) and the pair says so; ldap2 untouched;
//   - the peer unhealthy (frozen) when the rollout starts: nothing is taken
//     down, Stalled at the progress deadline, and it goes on once the peer
//     answers again;
//   - the database down at preflight: nothing is taken down until it is back.
// Each test ends with the pair Ready again on a good image.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { FailoverClient } from "../failover-client/client.js";
import type { World } from "./harness.js";
import { InvariantMonitor } from "./invariants.js";
import {
  addBrokenImages,
  conditionOf,
  budget,
  EXAMPLE_IMAGE,
  freeze,
  image,
  pairView,
  patchPair,
  rolledOutTo,
  rolloutWorld,
  runningOf,
  STRATEGIES,
  thaw,
  until,
  untilPair,
  useStrategy,
  type PairView,
  type RolloutWorld,
} from "./rollout-world.js";
import { durationText } from "./time-scale.js";

const SERVERS = ["ldap1", "ldap2"] as const;

let rw: RolloutWorld;
let world: World;
let broken: { nolisten: string; nousers: string };
let current = EXAMPLE_IMAGE;
let tags = 0;
const nextImage = () => image(`1.6.${++tags}`);

beforeAll(async () => {
  rw = await rolloutWorld({
    kubeconfig: inject("kubeconfig"),
    // A frozen server costs each reconcile a probe timeout: short ones keep the operator's pace.
    operatorArgs: ["--probe-connect-timeout=1s", "--probe-search-timeout=2s"],
  });
  world = rw.world;
  broken = addBrokenImages(world);
}, 240_000);

afterAll(async () => {
  await world?.stop();
});

const frozen = new Set<number>();
const thawAll = () => {
  for (const vmid of frozen) thaw(world, vmid);
  frozen.clear();
};

/** A container as it was: the same process, never restarted, reconfigured or replaced. */
const snapshot = (server: string) => {
  const ct = runningOf(world, rw.uid, server);
  if (!ct) throw new Error(`${server} does not run`);
  return { vmid: ct.vmid, address: ct.address, startedAt: ct.startedAt, image: ct.image, status: ct.status };
};

/** Whether `server` answers a user lookup right now, as a client of that server alone would see it. */
async function serves(server: string): Promise<boolean> {
  const client = new FailoverClient({
    uris: [`ldaps://${server}:636`],
    dnsServer: world.dnsServer,
    baseDn: world.baseDn,
    searchTimeoutMs: world.times.searchTimeoutMs,
    connectTimeoutMs: world.times.connectTimeoutMs,
  });
  try {
    const r = await client.lookupUser(world.postgres.seed.users[0]!.uid);
    return r.ok;
  } finally {
    await client.close();
  }
}

/** The pair's events as type/reason, oldest first. */
async function events(): Promise<string[]> {
  const list = JSON.parse(
    await world.kubectl("get", "events", "--field-selector=involvedObject.kind=LdapPair", "-o", "json"),
  ) as { items: { type?: string; reason?: string }[] };
  return list.items.map((e) => `${e.type}/${e.reason}`);
}

/**
 * What the operator did to containers after `since`: every task but a deletion, which only removes a
 * stopped container (a snapshot shows when a serving one was touched).
 */
const actsAfter = (monitor: InvariantMonitor, since: number) =>
  monitor.tasks.filter((t) => /^vz/.test(t.type) && t.type !== "vzdestroy" && t.seenAt > since);

/** Stops and shutdowns the watch saw start after `since`. */
const stopsAfter = (monitor: InvariantMonitor, since: number) =>
  monitor.tasks.filter((t) => /^vz(stop|shutdown)$/.test(t.type) && t.seenAt > since);

const stalled = (v: PairView, reason: string) => {
  const c = conditionOf(v, "Stalled");
  return c?.status === "True" && c.reason === reason;
};

/** Back to a good image and the default gates: the next test starts from Ready. */
async function recover(to: string): Promise<void> {
  await patchPair(world, {
    spec: { image: to, rollout: { autoRollback: false, healthGateTimeout: null, progressDeadline: null } },
  });
  await untilPair(world, `Ready again on ${to}`, (v) => rolledOutTo(v, to), rw.patience(90_000));
  current = to;
}

/** Long enough to see a gate fail on a loaded machine, short enough for CI. */
const gateTimeout = () => durationText(rw.patience(3_000));

describe.each(STRATEGIES)("%s", (strategy) => {
  // A test that failed half way leaves the pair wherever it was: the next one starts from Ready.
  afterEach(async () => {
    thawAll();
    await world.postgres.startServer();
    if (!rolledOutTo(await pairView(world), current)) await recover(nextImage());
  }, 120_000);

  beforeAll(async () => {
    await useStrategy(rw, strategy, current);
  }, 60_000);

  it(
    "halts on an image that never listens: Stalled HealthGateFailed, Degraded, ldap2 untouched and serving",
    async () => {
      const ldap2 = snapshot("ldap2");
      const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      try {
        await patchPair(world, {
          spec: {
            image: broken.nolisten,
            rollout: { healthGateTimeout: gateTimeout(), autoRollback: false },
          },
        });
        const failed = await untilPair(
          world,
          "Stalled with HealthGateFailed",
          (v) => stalled(v, "HealthGateFailed"),
          rw.patience(60_000),
        );
        const seenAt = Date.now();
        expect(conditionOf(failed, "Stalled")!.message).toMatch(/ldap1/);
        expect(conditionOf(failed, "Stalled")!.message).toMatch(/connect/);
        expect(failed.phase).toBe("Degraded");
        expect(failed.rollout?.["failure"]).toMatchObject({
          server: "ldap1",
          image: broken.nolisten,
          failedStep: "connect",
          previousImage: current,
        });
        // Halted: for two settle times nothing more is done to either server.
        await new Promise((r) => setTimeout(r, 2 * world.times.settleTimeMs));
        expect(actsAfter(monitor, seenAt)).toEqual([]);
        expect(snapshot("ldap2")).toEqual(ldap2);
        expect(await serves("ldap2")).toBe(true);
        expect(monitor.downWindows("ldap2")).toEqual([]);
        // Events are written after the status: looked for until they are there. Last, as
        // the client-go-like per-object budget of the recorder may have dropped it behind the Normal ones.
        let seen: string[] = [];
        await until(
          "a Warning HealthGateFailed",
          async () => ((seen = await events()).includes("Warning/HealthGateFailed") ? true : undefined),
          rw.patience(10_000),
          200,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; the pair's events: ${seen.join(", ")}`);
        });
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
      await recover(nextImage());
    },
    budget(3),
  );

  it(
    "rolls ldap1 back with autoRollback on an image that serves no user, and says so; ldap2 untouched",
    async () => {
      const previous = current;
      const [ldap1, ldap2] = [snapshot("ldap1"), snapshot("ldap2")];
      const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      let rolledBack: PairView;
      try {
        await patchPair(world, {
          spec: { image: broken.nousers, rollout: { healthGateTimeout: gateTimeout(), autoRollback: true } },
        });
        rolledBack = await untilPair(
          world,
          "ldap1 rolled back",
          (v) =>
            (v.rollout?.["failure"] as { rollback?: { state?: string } } | undefined)?.rollback?.state ===
              "RolledBack" && v.servers.every((s) => s.healthy),
          rw.patience(90_000),
        );
        const seenAt = Date.now();
        expect(rolledBack.rollout?.["failure"]).toMatchObject({
          server: "ldap1",
          image: broken.nousers,
          failedStep: "knownUser",
          rollback: { mode: strategy === "CreateThenSwap" ? "Swap" : "Rebuild", image: previous },
        });
        const back = snapshot("ldap1");
        expect(back.image).toBe(previous);
        // CreateThenSwap undoes a failed verify with one start of the old container.
        if (strategy === "CreateThenSwap")
          expect([back.vmid, back.address]).toEqual([ldap1.vmid, ldap1.address]);
        expect(await serves("ldap1")).toBe(true);
        // It stays rolled back: no second try of the spec's image while the spec still asks for it.
        await new Promise((r) => setTimeout(r, 2 * world.times.settleTimeMs));
        expect(actsAfter(monitor, seenAt)).toEqual([]);
        expect(snapshot("ldap2")).toEqual(ldap2);
        expect(monitor.downWindows("ldap2")).toEqual([]);
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
      await recover(nextImage());
    },
    budget(3),
  );

  it(
    "waits while the peer is unhealthy, never takes a server down, is Stalled at the deadline, then goes on",
    async () => {
      const [ldap1, ldap2] = [snapshot("ldap1"), snapshot("ldap2")];
      const to = nextImage();
      const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      freeze(world, ldap2.vmid);
      frozen.add(ldap2.vmid);
      try {
        await untilPair(
          world,
          "ldap2 seen unhealthy",
          (v) => v.servers.find((s) => s.name === "ldap2")?.healthy === false,
          rw.patience(30_000),
        );
        // Past the preflight's pulls, which a frozen peer's probe timeouts slow down.
        const deadline = rw.patience(8_000);
        const applied = Date.now();
        await patchPair(world, {
          spec: { image: to, rollout: { progressDeadline: durationText(deadline), healthGateTimeout: "1h" } },
        });
        const v = await untilPair(
          world,
          "Stalled at the progress deadline",
          (p) => stalled(p, "ProgressDeadlineExceeded"),
          rw.patience(60_000),
        );
        expect(Date.now() - applied).toBeGreaterThanOrEqual(deadline);
        expect(conditionOf(v, "Stalled")!.message).toMatch(/ldap2/);
        expect(monitor.downWindows("ldap1")).toEqual([]);
        expect(snapshot("ldap1")).toEqual(ldap1);
        expect(snapshot("ldap2")).toEqual(ldap2);
      } finally {
        thaw(world, ldap2.vmid);
        frozen.delete(ldap2.vmid);
      }
      try {
        await untilPair(
          world,
          `rolled out to ${to} once ldap2 answers`,
          (p) => rolledOutTo(p, to),
          rw.patience(90_000),
        );
        current = to;
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
      await recover(current);
    },
    budget(3),
  );

  it(
    "takes nothing down while the database is down at preflight, and rolls out once it is back",
    async () => {
      const [ldap1, ldap2] = [snapshot("ldap1"), snapshot("ldap2")];
      const to = nextImage();
      const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      await world.postgres.stopServer();
      try {
        await patchPair(world, { spec: { image: to } });
        await untilPair(
          world,
          "the preflight seen failing",
          (v) =>
            v.observedGeneration === v.generation &&
            (v.raw["status"] as { database?: { reachable?: boolean } }).database?.reachable === false,
          rw.patience(30_000),
        );
        await new Promise((r) => setTimeout(r, 2 * world.times.settleTimeMs));
        expect(SERVERS.map((s) => monitor.downWindows(s))).toEqual([[], []]);
        expect([snapshot("ldap1"), snapshot("ldap2")]).toEqual([ldap1, ldap2]);
        // A stopped container may be made ahead (CreateThenSwap); nothing running is stopped.
        expect(stopsAfter(monitor, monitor.startedAt)).toEqual([]);
      } finally {
        await world.postgres.startServer();
      }
      try {
        await untilPair(world, `rolled out to ${to}`, (v) => rolledOutTo(v, to), rw.patience(90_000));
        current = to;
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
    },
    budget(2),
  );
});
