// The reconcile loop in-process: the runtime (informer, workqueue, status
// writer, events) around reconcileLdapPair, against the real API server, the
// Proxmox simulator with the gateway stand-in on two nodes and the real
// PostgreSQL. An LdapPair is driven to Ready with the runbook's env, realm
// and node DNS; a server stopped behind the operator's back is started
// again; a steady pair writes nothing; deletion with policy Delete removes
// what the pair made and restores the nodes' DNS.
import { createWriteStream } from "node:fs";
import { Writable } from "node:stream";
import { EventsV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { LdapPair } from "../../src/api/ldappair.js";
import { parseConfig } from "../../src/config.js";
import { runOperator, type Operator } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { parseEnv } from "../../src/proxmox/normalize.js";
import { isOwnedBy } from "../../src/proxmox/tags.js";
import { FINALIZER } from "../../src/reconcile/model.js";
import { LdapPairReconciler } from "../../src/reconcile/reconciler.js";
import { ok } from "../pve-sim/helpers.js";
import type { ContainerState } from "../pve-sim/state.js";
import { desiredOf, eventually, startWorld, type World } from "./world.js";

const NAME = "site-a";
let world: World;
let reconciler: LdapPairReconciler;
let operator: Operator;

beforeAll(async () => {
  world = await startWorld({
    kubeconfig: inject("kubeconfig"),
    databaseUrl: inject("databaseUrl"),
    namespace: "reconcile-loop",
  });
  reconciler = new LdapPairReconciler({
    inventory: { intervalMs: 500, busyIntervalMs: 100, pollTimeoutMs: 5_000 },
    timeScale: 0.05,
    probeTimeouts: { connect: 2_000, rootDse: 2_000, knownUser: 3_000, userCount: 5_000 },
    proxmoxTimeoutMs: 5_000,
  });
  const parsed = parseConfig([
    "--leader-elect=false",
    `--namespaces=${world.namespace}`,
    "--metrics-bind-address=0",
    "--health-probe-bind-address=0",
    "--identity=reconcile-loop",
    "--resync-period=30s",
  ]);
  if (parsed.help) throw new Error("unexpected help");
  const log = process.env.RECONCILE_TEST_LOG;
  operator = await runOperator({
    config: parsed.config,
    kubeConfig: world.kc,
    reconcile: reconciler.reconcile,
    logger: createLogger({
      level: "debug",
      stream: log ? createWriteStream(log) : new Writable({ write: (_c, _e, done) => done() }),
    }),
  });
  reconciler.bindQueue((key) => operator.controller.queue.add(key));
}, 120_000);

afterAll(async () => {
  await operator?.stop();
  reconciler?.close();
  await world?.stop();
});

const ours = (pair: LdapPair): ContainerState[] =>
  Object.values(world.sim.state.containers).filter((ct) =>
    isOwnedBy(String(ct.conf["tags"] ?? ""), pair.metadata.uid!),
  );

const reconciles = async (): Promise<number> => {
  const metric = await operator.metrics.registry.getSingleMetric("controller_runtime_reconcile_total")?.get();
  return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
};

const condition = (pair: LdapPair, type: string) => pair.status?.conditions?.find((c) => c.type === type);

async function readyPair(timeoutMs = 90_000): Promise<LdapPair> {
  return eventually(
    "the LdapPair to be Ready",
    async () => {
      const pair = await world.getPair(NAME);
      const ready = condition(pair, "Ready");
      return ready?.status === "True" && pair.status?.observedGeneration === pair.metadata.generation
        ? pair
        : undefined;
    },
    timeoutMs,
  ).catch(async (err: unknown) => {
    const pair = await world.getPair(NAME).catch(() => undefined);
    throw new Error(`${(err as Error).message}; status: ${JSON.stringify(pair?.status, null, 1)}`);
  });
}

describe("an LdapPair driven to Ready in-process", () => {
  let pair: LdapPair;

  beforeAll(async () => {
    await world.createPair(NAME, { realm: { syncInterval: "1h" } });
    pair = await readyPair();
  }, 120_000);

  it("made one container per server, on its node, running, tagged and with the runbook's env", () => {
    const cts = ours(pair).sort((a, b) =>
      String(a.conf["hostname"]).localeCompare(String(b.conf["hostname"])),
    );
    expect(cts.map((ct) => [ct.conf["hostname"], ct.node, ct.status])).toEqual([
      ["ldap1", "pve1", "running"],
      ["ldap2", "pve2", "running"],
    ]);
    const desired = desiredOf(world, pair);
    for (const [i, ct] of cts.entries()) {
      const env = Object.fromEntries(parseEnv(String(ct.conf["env"])));
      expect(env).toMatchObject(Object.fromEntries(desired.servers[i]!.env));
      // The image's own variables stay beneath ours.
      expect(env["PATH"]).toBeTruthy();
    }
    expect(pair.metadata.finalizers).toContain(FINALIZER);
  });

  it("reports the pair Ready with both servers healthy", () => {
    expect(pair.status).toMatchObject({ phase: "Ready", readyServers: "2/2" });
    expect(condition(pair, "Ready")).toMatchObject({
      status: "True",
      observedGeneration: pair.metadata.generation,
    });
    expect(condition(pair, "Stalled")?.status ?? "False").toBe("False");
    expect(condition(pair, "Reconciling")?.status ?? "False").toBe("False");
    expect(pair.status?.task).toBeUndefined();
  });

  it("made the realm of the runbook's table, marked as this pair's, and synced it", async () => {
    const realm = (await ok(world.sim, "GET", "/access/domains/ldap")) as Record<string, unknown>;
    expect(realm).toMatchObject({
      base_dn: "dc=example,dc=com",
      server1: "ldap1",
      server2: "ldap2",
      mode: "ldaps",
    });
    expect(String(realm["comment"])).toContain(pair.metadata.uid);
    const synced = await eventually("a finished realm sync in status", async () => {
      const p = await world.getPair(NAME);
      return p.status?.realm?.lastSyncTime ? p : undefined;
    });
    expect(synced.status?.realm?.usersImported).toBeGreaterThan(0);
  });

  it("pointed the nodes' DNS at the site's DNSMasq", async () => {
    for (const node of ["pve1", "pve2"])
      expect(await ok(world.sim, "GET", `/nodes/${node}/dns`)).toMatchObject({
        search: "example.com",
        dns1: world.site.dnsAddress,
      });
  });

  it("recorded an event for the actions it took", async () => {
    const events = await world.kc
      .makeApiClient(EventsV1Api)
      .listNamespacedEvent({ namespace: world.namespace });
    const reasons = new Set(
      events.items.filter((e) => e.regarding?.uid === pair.metadata.uid).map((e) => e.reason),
    );
    expect(reasons.size).toBeGreaterThan(3);
  });

  it("writes nothing while the pair stays as it is, however often it is reconciled", async () => {
    // Let the reconciles that follow Ready settle, then force a few and count.
    await new Promise((r) => setTimeout(r, 1_000));
    const writes = operator.status.writes;
    const before = await reconciles();
    world.sim.requestLog.clear();
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      operator.controller.queue.add(`${world.namespace}/${NAME}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    await eventually("the forced reconciles", async () =>
      (await reconciles()) >= before + 5 ? true : undefined,
    );
    expect(operator.status.writes).toBe(writes);
    expect(ours(pair)).toHaveLength(2);
    // The reconciles read the shared snapshot: the cluster is listed by the poll alone (500 ms here).
    const polls = world.sim.requestLog.find("GET", "/cluster/resources").length;
    expect(polls).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 500) + 1);
  });

  it("starts a server stopped behind its back, seen through the shared inventory", async () => {
    const ldap1 = ours(pair).find((ct) => ct.conf["hostname"] === "ldap1")!;
    await ok(world.sim, "POST", `/nodes/pve1/lxc/${ldap1.vmid}/status/stop`);
    await eventually("ldap1 stopped", () =>
      world.sim.container(ldap1.vmid)?.status === "stopped" ? true : undefined,
    );
    // Within a few inventory intervals (500 ms here), long before any requeue or resync (30 s) would come.
    const stoppedAt = Date.now();
    await eventually(
      "ldap1 running again",
      () => (world.sim.container(ldap1.vmid)?.status === "running" ? true : undefined),
      30_000,
    );
    expect(Date.now() - stoppedAt).toBeLessThan(6_000);
    expect(ours(pair)).toHaveLength(2);
    await readyPair();
  });

  it("with policy Delete, deletion removes the containers and the realm, restores the nodes' DNS and keeps an image another pair uses", async () => {
    // A pair in a namespace this operator does not watch, built from the same image.
    const other = "reconcile-loop-other";
    await world.core.createNamespace({ body: { metadata: { name: other } } }).catch(() => undefined);
    await world.objects
      .createNamespacedCustomObject({
        group: "ldapgateway.io",
        version: "v1alpha1",
        plural: "ldappairs",
        namespace: other,
        body: {
          apiVersion: "ldapgateway.io/v1alpha1",
          kind: "LdapPair",
          metadata: { name: "neighbour" },
          spec: pair.spec,
        },
      })
      .catch(() => undefined);
    await world.objects.patchNamespacedCustomObject({
      group: "ldapgateway.io",
      version: "v1alpha1",
      plural: "ldappairs",
      namespace: world.namespace,
      name: NAME,
      body: [{ op: "replace", path: "/spec/deletionPolicy", value: "Delete" }],
    });
    await readyPair();
    await world.objects.deleteNamespacedCustomObject({
      group: "ldapgateway.io",
      version: "v1alpha1",
      plural: "ldappairs",
      namespace: world.namespace,
      name: NAME,
    });
    await eventually(
      "the LdapPair gone",
      async () =>
        await world.getPair(NAME).then(
          () => undefined,
          () => true,
        ),
      90_000,
    );
    expect(ours(pair)).toEqual([]);
    expect((await ok(world.sim, "GET", "/access/domains")) as { realm: string }[]).not.toContainEqual(
      expect.objectContaining({ realm: "ldap" }),
    );
    expect(await ok(world.sim, "GET", "/nodes/pve1/dns")).toMatchObject({
      search: "localdomain",
      dns1: "127.0.0.53",
    });
  });
});

describe("provisioning under faults", () => {
  it("converges with one container per server: a lost create answer, a failed create task, a refused start", async () => {
    world.sim.faults.dropResponses({ method: "POST", path: "/nodes/pve1/lxc", mode: "reset" });
    world.sim.faults.failNextTask({ type: "vzcreate", message: "unable to create CT - disk full", count: 1 });
    world.sim.faults.failRequests({
      method: "POST",
      path: "/nodes/pve2/lxc/*/status/start",
      status: 500,
      message: "start failed: something broke",
    });
    const faulty = await world.createPair(NAME, { realm: { manage: false }, nodeDns: undefined });
    const pair = await readyPair();
    expect(pair.metadata.uid).toBe(faulty.metadata.uid);
    const cts = ours(pair);
    expect(cts.map((ct) => [ct.conf["hostname"], ct.status]).sort()).toEqual([
      ["ldap1", "running"],
      ["ldap2", "running"],
    ]);
    // No duplicate and no orphan: the lost create (whose task then failed) left nothing behind that
    // the operator took for a second ldap1, and nothing of ours exists beyond the two servers.
    const all = Object.values(world.sim.state.containers);
    expect(
      all.filter((ct) => ct.conf["hostname"] === "ldap1" || ct.conf["hostname"] === "ldap2"),
    ).toHaveLength(2);
    expect(pair.status?.lastFailure).toBeUndefined();
  }, 120_000);
});
