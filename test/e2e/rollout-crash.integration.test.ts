// Crash safety of a rollout end to end, for each strategy: the operator is
// killed (SIGKILL) each time the LdapPair's status shows a new rollout step
// or a new task in flight, and started again at once. Nothing of the rollout
// lives only in its memory, so every run finishes on the new image with the
// invariants intact (invariants.ts), one container per server and nothing
// left over: no duplicate, orphaned or skipped server.
import { isOwnedBy } from "../../src/proxmox/tags.js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { World } from "./harness.js";
import { InvariantMonitor } from "./invariants.js";
import {
  budget,
  containersOf,
  EXAMPLE_IMAGE,
  image,
  pairView,
  patchPair,
  rolledOutTo,
  rolloutWorld,
  STRATEGIES,
  until,
  useStrategy,
  type PairView,
  type RolloutWorld,
} from "./rollout-world.js";

const SERVERS = ["ldap1", "ldap2"] as const;

let rw: RolloutWorld;
let world: World;
let current = EXAMPLE_IMAGE;
let tags = 0;

beforeAll(async () => {
  rw = await rolloutWorld({ kubeconfig: inject("kubeconfig") });
  world = rw.world;
}, 240_000);

afterAll(async () => {
  await world?.stop();
});

/** What a kill is keyed on: the rollout's server and step, and the task in flight (with its server). */
const stepOf = (v: PairView): string | undefined =>
  v.rollout?.step || v.task
    ? [
        `${v.rollout?.server ?? "-"}/${v.rollout?.step ?? "-"}`,
        v.task ? `${v.task.server ?? "-"}:${v.task.action} ${v.task.upid}` : "-",
      ].join(" ")
    : undefined;

describe.each(STRATEGIES)("%s", (strategy) => {
  beforeAll(async () => {
    await useStrategy(rw, strategy, current);
  }, 60_000);

  it(
    "finishes the rollout with the operator killed at every step in turn, invariants intact",
    async () => {
      const to = image(`1.7.${++tags}`);
      // Every task outlasts a restart of the operator, so each restart finds the task it started
      // still running and must carry on from the status: the crash this test is about.
      const durations = { ...world.sim.config.durations };
      const slow = rw.patience(3_500) / Math.max(world.sim.config.speed, 0.001);
      for (const k of Object.keys(durations) as (keyof typeof durations)[])
        world.sim.config.durations[k] = slow;
      const started = Date.now();
      const monitor = new InvariantMonitor(world.sim, { uid: rw.uid, armed: true });
      const kills: { at: number; step: string }[] = [];
      try {
        await patchPair(world, { spec: { image: to } });
        const seen = new Set<string>();
        await until(
          `rolled out to ${to} through SIGKILLs`,
          async () => {
            const v = await pairView(world);
            if (rolledOutTo(v, to)) return v;
            const step = stepOf(v);
            if (step && !seen.has(step)) {
              seen.add(step);
              kills.push({ at: Date.now() - started, step });
              await world.operator.kill("SIGKILL");
              world.operator.start();
            }
            return undefined;
          },
          rw.patience(240_000),
          20,
        );
        current = to;
      } finally {
        Object.assign(world.sim.config.durations, durations);
        monitor.stop();
        console.log(
          `[${strategy}] ${kills.length} kills in ${Date.now() - started} ms:\n` +
            kills.map((k) => `  +${k.at} ms ${k.step}`).join("\n"),
        );
      }
      expect(monitor.violations, monitor.describe()).toEqual([]);
      // No duplicate, orphaned or skipped server: one container each, on the new image, from this rollout.
      for (const s of SERVERS) {
        const cts = containersOf(world, rw.uid, s);
        expect(
          cts.map((ct) => [ct.status, ct.image]),
          `${s}'s containers`,
        ).toEqual([["running", to]]);
        expect(monitor.containersSeen.some((c) => c.server === s && c.address === cts[0]!.address)).toBe(
          true,
        );
      }
      // No step done twice: one task of each kind per container and node (a pull per node, one sync).
      const keys = monitor.tasks.map((t) => `${t.type} ${t.node} ${t.id}`);
      const acted = world.operator
        .logLines()
        .filter((l) => l["action"] !== undefined && Date.parse(String(l["time"])) >= started)
        .map((l) => `${String(l["time"])} ${l.msg} (${String(l["explanation"] ?? "")})`);
      expect(
        keys.filter((k, i) => keys.indexOf(k) !== i),
        `tasks:\n${keys.join("\n")}\nthe operator's actions:\n${acted.join("\n")}`,
      ).toEqual([]);
      const owned = Object.values(world.sim.state.containers).filter((ct) =>
        isOwnedBy(String(ct.conf["tags"] ?? ""), rw.uid),
      );
      expect(owned).toHaveLength(2);
      // It was killed with each server's stop and start in flight.
      const killedAt = (server: string, action: string) =>
        kills.some((k) => k.step.includes(` ${server}:${action} `));
      for (const s of SERVERS)
        for (const action of ["StopContainer", "StartContainer"])
          expect(killedAt(s, action), `killed during ${s}'s ${action}`).toBe(true);
    },
    budget(4),
  );
});
