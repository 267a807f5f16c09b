// Rolling updates end to end, for each strategy, with the operator as its
// own process and the invariants watched throughout (invariants.ts): a clean
// image rollout, ldap1 first, then a realm sync and Ready on the new image;
// the same while an SSSD-like client looks users up, with not one failed
// lookup; a restart of a mutable tag through rollout.restartedAt, which
// pulls it again; a second image change in the middle (converges on the
// newest); pause and resume, before the first server and in the middle.
// One world for the file; each test starts from the pair Ready and rolls
// to an image tag of its own.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { LookupStream } from "../failover-client/stream.js";
import type { World } from "./harness.js";
import { InvariantMonitor, type ContainerEventAt } from "./invariants.js";
import { durationText } from "./time-scale.js";
import {
  budget,
  containersOf,
  EXAMPLE_IMAGE,
  image,
  patchPair,
  rolledOutTo,
  rolloutWorld,
  runningOf,
  STRATEGIES,
  TASK,
  untilPair,
  useStrategy,
  until,
  type RolloutWorld,
} from "./rollout-world.js";

/** Strategies the planner implements: the others' tests are todo until it does. */
const SERVERS = ["ldap1", "ldap2"] as const;
const PAUSED_ANNOTATION = "ldapgateway.io/paused";

let rw: RolloutWorld;
let world: World;
let current = EXAMPLE_IMAGE;
let tags = 0;
const nextImage = () => image(`1.5.${++tags}`);

beforeAll(async () => {
  rw = await rolloutWorld({ kubeconfig: inject("kubeconfig") });
  world = rw.world;
}, 240_000);

afterAll(async () => {
  await world?.stop();
});

/** Each server's running container, as vmid@address: a vmid is reused, an address is not. */
const instances = (): Record<string, string | undefined> =>
  Object.fromEntries(
    SERVERS.map((s) => {
      const ct = runningOf(world, rw.uid, s);
      return [s, ct ? `${ct.vmid}@${ct.address}` : undefined];
    }),
  );
const at = (events: ContainerEventAt[], kind: ContainerEventAt["kind"], instance: string | undefined) =>
  events.find((e) => e.kind === kind && `${e.vmid}@${e.address}` === instance)?.at;

/** Rolls to `to` (the patch may carry more) and waits for it; returns the watch, stopped. */
async function rollTo(to: string, patch: Record<string, unknown> = {}): Promise<InvariantMonitor> {
  const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
  try {
    await patchPair(world, { spec: { image: to, ...patch } });
    await untilPair(world, `rolled out to ${to}`, (v) => rolledOutTo(v, to), rw.patience(90_000));
    current = to;
  } finally {
    monitor.stop();
  }
  return monitor;
}

/** One container per server, running `wanted`, and nothing else of the pair's. */
function expectSettledOn(wanted: string): void {
  for (const s of SERVERS) {
    const cts = containersOf(world, rw.uid, s);
    expect(
      cts.map((ct) => [ct.status, ct.image]),
      `${s}'s containers`,
    ).toEqual([["running", wanted]]);
  }
}

/** `kubectl get ldappairs` rows, one read after another, until stopped. */
function watchColumns(rows: string[]): { stop: () => Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      const table = await world.kubectl("get", "ldappairs", "--no-headers").catch(() => "");
      rows.push(...table.trimEnd().split("\n").filter(Boolean));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe.each(STRATEGIES)("%s", (strategy) => {
  beforeAll(async () => {
    await useStrategy(rw, strategy, current);
  }, 60_000);

  it(
    "rolls the image ldap1 first, one server at a time, then syncs the realm and is Ready on the new image",
    async () => {
      const before = instances();
      const started = Date.now();
      const to = nextImage();
      const columns: string[] = [];
      const watching = watchColumns(columns);
      const monitor = await rollTo(to).finally(() => watching.stop());
      expect(monitor.violations, monitor.describe()).toEqual([]);
      expectSettledOn(to);
      const after = instances();
      const [down1, down2] = SERVERS.map((s) => monitor.downWindows(s));
      // Each server down once, ldap1 first, ldap2 only a settle time after ldap1 went down.
      expect(down1).toHaveLength(1);
      expect(down2).toHaveLength(1);
      expect(down1![0]!.to!).toBeLessThanOrEqual(down2![0]!.from);
      // The gate counts from when the operator saw ldap1 go down (lastDownAt), not the simulator's stop: 1 s of slack.
      expect(down2![0]!.from - down1![0]!.from).toBeGreaterThanOrEqual(world.times.settleTimeMs - 1000);
      const e = monitor.events;
      for (const s of SERVERS) {
        expect(after[s], `${s} is a new container`).not.toBe(before[s]);
        const [created, oldStopped, oldGone, booted] = [
          at(e, "created", after[s]),
          at(e, "stopped", before[s]),
          at(e, "destroyed", before[s]),
          at(e, "booted", after[s]),
        ];
        expect(
          [created, oldStopped, oldGone, booted].every((t) => t !== undefined),
          `${s}'s events`,
        ).toBe(true);
        if (strategy === "RemoveThenCreate") {
          // The runbook: stop and delete the old container, then create the new one.
          expect(oldGone!).toBeLessThanOrEqual(created!);
        } else {
          // Created while the old one served; the old one kept until the new one booted.
          expect(created!).toBeLessThan(oldStopped!);
          expect(oldGone!).toBeGreaterThan(booted!);
        }
      }
      // One realm sync, after the last server came back.
      const syncs = monitor.tasks.filter((t) => t.type === TASK.sync);
      expect(syncs).toHaveLength(1);
      expect(syncs[0]!.seenAt).toBeGreaterThan(at(e, "booted", after["ldap2"])!);
      expect(syncs[0]!.exitstatus).toBe("OK");
      const pair = await untilPair(world, "the sync recorded", (v) => !!v.realm?.lastSyncTime, 5_000);
      expect(new Date(pair.realm!.lastSyncTime!).getTime()).toBeGreaterThanOrEqual(
        Math.floor(started / 1000) * 1000,
      );
      // kubectl get ldappairs showed the server and its step while the rollout went on.
      expect(
        columns.some((row) => /\sRollingUpdate\s.*\sldap1\s+\S+\s+\S+$/.test(row)),
        columns.join("\n"),
      ).toBe(true);
      expect(
        columns.some((row) => /\sRollingUpdate\s.*\sldap2\s+\S+\s+\S+$/.test(row)),
        columns.join("\n"),
      ).toBe(true);
      // kubectl wait returns at once: the rollout is over.
      await world.waitForCondition("site-a", "Ready", "True", 5_000);
    },
    budget(),
  );

  it(
    "keeps every lookup of an SSSD-like client answered throughout the rollout",
    async () => {
      // SSSD's memory of a failed server must outlast the operator's own pace between the two
      // stops, or a missing settle time would go unnoticed: both longer than the world's, settle
      // still the longer of the two, as 45 s and 30 s are.
      const [settleMs, memoryMs] = [rw.patience(6_000), rw.patience(5_000)];
      await patchPair(world, { spec: { rollout: { settleTime: durationText(settleMs) } } });
      const client = world.failoverClient({ failedServerMemoryMs: memoryMs });
      const stream = new LookupStream({
        client,
        uids: world.postgres.seed.users.map((u) => u.uid),
        intervalMs: Math.max(25, Math.round(200 * world.times.scale)),
      });
      stream.start();
      let monitor: InvariantMonitor | undefined;
      try {
        await until(
          "the client's first answers",
          () => (stream.report().succeeded >= 5 ? true : undefined),
          10_000,
          20,
        );
        const started = Date.now();
        monitor = await rollTo(nextImage());
        // Past SSSD's memory of the last failure: a late failure would still show.
        await new Promise((r) => setTimeout(r, memoryMs + 200));
        const report = await stream.stop();
        const rel = (t: number | undefined) => (t === undefined ? "open" : `+${t - started} ms`);
        console.log(
          `[${strategy}] ${report.total} lookups, ${report.failed.length} failed, max ${report.maxLatencyMs} ms; ` +
            `unavailable as the client saw it: ${Object.entries(report.unavailable)
              .map(([s, ws]) => `${s} ${ws.map((w) => `${rel(w.from)}..${rel(w.to)}`).join(", ")}`)
              .join("; ")}; down in the simulator: ${SERVERS.map(
              (s) =>
                `${s} ${monitor!
                  .downWindows(s)
                  .map((w) => `${rel(w.from)}..${rel(w.to)} (${(w.to ?? Date.now()) - w.from} ms)`)
                  .join(", ")}`,
            ).join("; ")}`,
        );
        expect(report.failed).toEqual([]);
        expect(report.offline).toEqual([]);
        expect(monitor.violations, monitor.describe()).toEqual([]);
        // It did fail over: ldap1 went down under it, then ldap2.
        expect(report.switches.map(([, s]) => s)).toEqual(["ldap1", "ldap2", "ldap1"]);
        expect(Object.keys(report.unavailable).sort()).toEqual(["ldap1", "ldap2"]);
      } finally {
        await stream.stop();
        await client.close();
        monitor?.stop();
        await patchPair(world, { spec: { rollout: { settleTime: world.times.settleTime } } });
      }
    },
    budget(),
  );

  it(
    "restarts a mutable tag on rollout.restartedAt: pulled again under a new volume, both servers rebuilt",
    async () => {
      const latest = image("latest");
      await rollTo(latest);
      const volumes = () =>
        world.nodes.map((n) =>
          (world.sim.state.volumes[`${n}/local`] ?? [])
            .filter((v) => v.reference === latest)
            .map((v) => v.volid),
        );
      const [volumesBefore, before] = [volumes(), instances()];
      const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      try {
        await patchPair(world, {
          spec: { rollout: { restartedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z") } },
        });
        await untilPair(
          world,
          "both servers rebuilt from a fresh pull",
          (v) => rolledOutTo(v, latest) && SERVERS.every((s) => instances()[s] !== before[s]),
          rw.patience(90_000),
        );
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
      expectSettledOn(latest);
      const pulls = monitor.tasks.filter((t) => t.type === TASK.pull);
      expect(pulls.map((p) => p.node).sort()).toEqual([...world.nodes].sort());
      const after = volumes();
      world.nodes.forEach((_, i) => {
        const fresh = after[i]!.filter((v) => !volumesBefore[i]!.includes(v));
        expect(fresh, `a new volume on ${world.nodes[i]}`).toHaveLength(1);
      });
      for (const s of SERVERS) expect(instances()[s]).not.toBe(before[s]);
    },
    budget(2),
  );

  it(
    "converges on the newest image when the spec changes again in the middle of a rollout",
    async () => {
      const [middle, newest] = [nextImage(), nextImage()];
      const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      try {
        await patchPair(world, { spec: { image: middle } });
        // ldap1 is being rolled to the intermediate image: its new container exists.
        await until(
          "ldap1 on its way to the intermediate image",
          () => (containersOf(world, rw.uid, "ldap1").some((ct) => ct.image === middle) ? true : undefined),
          rw.patience(60_000),
          10,
        );
        await patchPair(world, { spec: { image: newest } });
        await untilPair(
          world,
          `rolled out to ${newest}`,
          (v) => rolledOutTo(v, newest),
          rw.patience(120_000),
        );
        current = newest;
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
      expectSettledOn(newest);
      const imagesOf = (s: string) =>
        monitor.containersSeen.filter((c) => c.server === s).map((c) => c.image);
      // ldap1 was rolled to the intermediate image and again to the newest; ldap2 straight to the newest.
      expect(imagesOf("ldap1")).toEqual(expect.arrayContaining([middle, newest]));
      expect(imagesOf("ldap2")).not.toContain(middle);
      expect(imagesOf("ldap2")).toContain(newest);
    },
    budget(2),
  );

  it(
    "holds a paused rollout before the first server and between servers, and resumes from there",
    async () => {
      const settle = world.times.settleTimeMs;
      // Paused from the start: nothing goes down.
      const first = nextImage();
      const before = instances();
      let monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      try {
        await patchPair(world, { spec: { image: first, rollout: { paused: true } } });
        await untilPair(
          world,
          "phase Paused",
          (v) => v.observedGeneration === v.generation && v.phase === "Paused",
          rw.patience(30_000),
        );
        await new Promise((r) => setTimeout(r, 2 * settle));
        expect((await untilPair(world, "still Paused", () => true, 1_000)).phase).toBe("Paused");
        expect(SERVERS.map((s) => monitor.downWindows(s).length)).toEqual([0, 0]);
        expect(instances()).toEqual(before);
        await patchPair(world, { spec: { rollout: { paused: false } } });
        await untilPair(world, `resumed to ${first}`, (v) => rolledOutTo(v, first), rw.patience(90_000));
        current = first;
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);

      // Paused (by annotation) while ldap1 is down: ldap1 comes back on the new image, ldap2 waits.
      const second = nextImage();
      monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      try {
        await patchPair(world, { spec: { image: second } });
        await until(
          "ldap1 down",
          () => (monitor.downWindows("ldap1").length > 0 ? true : undefined),
          rw.patience(60_000),
          10,
        );
        await world.kubectl("annotate", "ldappair/site-a", `${PAUSED_ANNOTATION}=true`);
        const ldap2 = runningOf(world, rw.uid, "ldap2")!;
        await untilPair(
          world,
          "ldap1 back on the new image, the rollout Paused",
          (v) =>
            v.phase === "Paused" &&
            v.servers.find((s) => s.name === "ldap1")?.image === second &&
            v.servers.every((s) => s.healthy),
          rw.patience(60_000),
        );
        await new Promise((r) => setTimeout(r, 2 * settle));
        expect(monitor.downWindows("ldap2")).toEqual([]);
        expect(runningOf(world, rw.uid, "ldap2")).toMatchObject({
          vmid: ldap2.vmid,
          startedAt: ldap2.startedAt,
          image: first,
        });
        expect((await untilPair(world, "still Paused", () => true, 1_000)).phase).toBe("Paused");
        await world.kubectl("annotate", "ldappair/site-a", `${PAUSED_ANNOTATION}-`);
        await untilPair(world, `resumed to ${second}`, (v) => rolledOutTo(v, second), rw.patience(90_000));
        current = second;
      } finally {
        monitor.stop();
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
      expectSettledOn(second);
    },
    budget(3),
  );
});
