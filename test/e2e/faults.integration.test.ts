// Provisioning and deletion under the simulator's faults, end to end with the
// operator as a process: one row per fault, each injected for a bounded
// number of requests (or a bounded time), a pair of its own applied and
// driven to Ready, then deleted with policy Delete under the row's deletion
// fault. After each phase the simulator's state is checked: exactly one
// container per server while it stands (no duplicate ever created), and
// nothing left behind once it is gone (no orphaned container, root disk or
// image).
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { ContainerEvent, PveSimulator } from "../pve-sim/simulator.js";
import { containersOf, eventually, realmConfig } from "./checks.js";
import { EXAMPLE_IMAGE } from "./example.js";
import { startWorld, type World } from "./harness.js";

let world: World;

beforeAll(async () => {
  world = await startWorld({
    kubeconfig: inject("kubeconfig"),
    // A short Proxmox timeout: a response lost by timing out costs the operator this long.
    operatorArgs: [
      "--inventory-interval=1s",
      "--inventory-busy-interval=200ms",
      "--time-scale=0.05",
      "--proxmox-timeout=3s",
    ],
  });
}, 180_000);

afterAll(async () => {
  await world?.stop();
});

type Inject = (sim: PveSimulator) => void | (() => Promise<void>);

interface FaultRow {
  name: string;
  /** Injected before the pair is applied; may return what runs beside the provisioning. */
  provision: Inject;
  /** Injected once the pair is Ready, before it is deleted. */
  deletion?: Inject;
  /** The row needs the realm (sync faults). */
  realm?: boolean;
}

const CREATE = { method: "POST", path: "/nodes/*/lxc" };
const START = { method: "POST", path: "/nodes/*/lxc/*/status/start" };
const PULL = { method: "POST", path: "/nodes/*/storage/*/oci-registry-pull" };
const SYNC = { method: "POST", path: "/access/domains/*/sync" };
const DELETE = { method: "DELETE", path: "/nodes/*/lxc/*" };

/**
 * Locks the container of `hostname` (as a backup would) the moment its creation ends, in the same tick,
 * so the operator never sees it unlocked; lifts the lock `ms` later, and then checks that the operator
 * configured the container only after that.
 */
const lockWhenCreated =
  (hostname: string, lock: string, ms: number): Inject =>
  (sim) => {
    let locked: { vmid: number; logAt: number } | undefined;
    const onCreated = (e: ContainerEvent) => {
      if (e.kind !== "created" || e.hostname !== hostname || locked) return;
      sim.container(e.vmid)!.conf["lock"] = lock;
      locked = { vmid: e.vmid, logAt: sim.requestLog.entries.length };
    };
    sim.events.on("container", onCreated);
    return async () => {
      const { vmid, logAt } = await eventually(`${hostname} created and locked`, () => locked, 60_000, 5);
      sim.events.off("container", onCreated);
      await new Promise((r) => setTimeout(r, ms));
      delete sim.container(vmid)!.conf["lock"];
      const lifted = Date.now();
      const configured = await eventually(
        `${hostname}'s env written`,
        () =>
          sim.requestLog.entries
            .slice(logAt)
            .find(
              (e) =>
                e.method === "PUT" &&
                e.path.endsWith(`/lxc/${vmid}/config`) &&
                e.status === 200 &&
                "env" in e.params,
            ),
        60_000,
        20,
      );
      expect(configured.time).toBeGreaterThanOrEqual(lifted);
    };
  };

/** Node pve2 unreachable (595) for `ms`, as pveproxy answers when it cannot reach a node. */
const nodeDownFor =
  (ms: number): Inject =>
  (sim) => {
    sim.faults.nodeUnreachable({ node: "pve2", status: 595 });
    const from = sim.requestLog.entries.length;
    return async () => {
      await new Promise((r) => setTimeout(r, ms));
      sim.faults.nodeReachable("pve2");
      // The operator did run into it.
      const refused = sim.requestLog.entries.slice(from).filter((e) => e.status === 595);
      expect(refused.length).toBeGreaterThan(0);
    };
  };

// Faults that hit different calls share a row: each is still bounded, and the row checks them together.
const ROWS: FaultRow[] = [
  {
    name: "5xx on create, 596 on start, 5xx on delete",
    provision: (sim) => {
      sim.faults.failRequests({ ...CREATE, status: 500, message: "internal error", count: 2 });
      sim.faults.failRequests({ ...START, status: 596, message: "tls handshake failed", count: 2 });
    },
    deletion: (sim) =>
      sim.faults.failRequests({ ...DELETE, status: 503, message: "service unavailable", count: 2 }),
  },
  {
    name: "latency on every call",
    provision: (sim) => sim.faults.addLatency({ path: "*", ms: 150, count: 60 }),
    deletion: (sim) => sim.faults.addLatency({ path: "*", ms: 150, count: 30 }),
  },
  {
    name: "lost responses on create (reset) and start (timeout), and on delete (timeout)",
    provision: (sim) => {
      sim.faults.dropResponses({ ...CREATE, mode: "reset", count: 1 });
      sim.faults.dropResponses({ ...START, mode: "timeout", count: 1 });
    },
    deletion: (sim) => sim.faults.dropResponses({ ...DELETE, mode: "timeout", count: 1 }),
  },
  {
    name: "a lost response on pull (reset)",
    provision: (sim) => sim.faults.dropResponses({ ...PULL, mode: "reset", count: 1 }),
  },
  {
    name: "a lost response on sync (reset), then a failing sync task",
    realm: true,
    provision: (sim) => {
      sim.faults.dropResponses({ ...SYNC, mode: "reset", count: 1 });
      sim.faults.failNextTask({ type: "auth-realm-sync", message: "unable to connect to ldap1", count: 1 });
    },
  },
  {
    name: "failing create and delete tasks",
    provision: (sim) =>
      sim.faults.failNextTask({ type: "vzcreate", message: "unable to create CT - disk full", count: 1 }),
    deletion: (sim) =>
      sim.faults.failNextTask({ type: "vzdestroy", message: "unable to destroy CT - busy", count: 1 }),
  },
  {
    name: "failing start and pull tasks",
    provision: (sim) => {
      sim.faults.failNextTask({ type: "vzstart", message: "startup for container failed", count: 1 });
      sim.faults.failNextTask({
        type: "ociregistrypull",
        message: "skopeo copy failed: connection reset",
        count: 1,
      });
    },
  },
  {
    name: "a lock held on a new container",
    provision: lockWhenCreated("ldap1", "backup", 1500),
  },
  {
    name: "a node unreachable for a while",
    provision: nodeDownFor(3000),
    deletion: nodeDownFor(2000),
  },
];

/** The row's image: a tag of its own, so that every row pulls (and its deletion removes) its own. */
const imageOf = (i: number) => `${EXAMPLE_IMAGE}-f${i}`;
const volumeOf = (i: number) => `local:vztmpl/ldap-gateway_${EXAMPLE_IMAGE.split(":")[1]}-f${i}.tar`;

function pairFor(i: number, row: FaultRow) {
  return world.exampleLdapPair({
    metadata: { name: `faults-${i}` },
    spec: {
      image: imageOf(i),
      deletionPolicy: "Delete",
      realm: { manage: !!row.realm },
      // A sync needs the nodes to resolve ldap1 and ldap2; the other rows leave the nodes' DNS alone.
      ...(row.realm ? {} : { nodeDns: undefined }),
    },
  });
}

/** What is left of the counted faults: none when every one was hit. */
function unspent() {
  const { failRequests, latency, dropResponses, failTasks } = world.sim.faults.list() as Record<
    string,
    unknown[]
  >;
  return [...failRequests!, ...latency!, ...dropResponses!, ...failTasks!];
}

const tasksSince = (from: number, type: string) =>
  world.sim.state.tasks.slice(from).filter((t) => t.type === type);

/** Containers, root disks and the row's image volumes in the simulator now. */
function leftovers(i: number) {
  const volumes = Object.entries(world.sim.state.volumes).flatMap(([where, list]) =>
    list.filter((v) => v.content === "rootdir" || v.volid === volumeOf(i)).map((v) => `${where}:${v.volid}`),
  );
  return { containers: Object.keys(world.sim.state.containers), volumes };
}

describe("provisioning and deletion under faults: no duplicate, no orphan", () => {
  it.each(ROWS.map((row, i) => [row.name, i, row] as const))(
    "%s",
    async (_name, i, row) => {
      world.sim.faults.clear();
      expect(leftovers(i)).toEqual({ containers: [], volumes: [] });
      const tasksFrom = world.sim.state.tasks.length;

      const beside = row.provision(world.sim);
      const running = beside ? beside() : Promise.resolve();
      const pair = await world.apply(pairFor(i, row));
      await world.waitForCondition(pair.metadata.name, "Ready", "True", 90_000);
      await running;
      expect(unspent(), "every fault injected was hit").toEqual([]);

      // Standing: one container per server on its node, and never a second one made.
      const cts = containersOf(world.sim, pair.metadata.uid);
      expect(cts.map((ct) => [ct.conf["hostname"], ct.node]).sort()).toEqual([
        ["ldap1", "pve1"],
        ["ldap2", "pve2"],
      ]);
      expect(Object.keys(world.sim.state.containers)).toHaveLength(2);
      const created = tasksSince(tasksFrom, "vzcreate").filter((t) => t.exitstatus === "OK");
      expect(created.map((t) => t.id).sort()).toEqual(cts.map((ct) => String(ct.vmid)).sort());
      if (row.realm) expect(await realmConfig(world.sim, "ldap")).toBeDefined();

      world.sim.faults.clear();
      const during = row.deletion?.(world.sim);
      const deleting = during ? during() : Promise.resolve();
      await world.kubectl("delete", `ldappair/${pair.metadata.name}`, "--timeout=90s");
      await deleting;
      world.sim.faults.clear();

      // Gone: nothing of it left in Proxmox.
      expect(leftovers(i)).toEqual({ containers: [], volumes: [] });
      expect(await realmConfig(world.sim, "ldap")).toBeUndefined();
    },
    240_000,
  );
});
