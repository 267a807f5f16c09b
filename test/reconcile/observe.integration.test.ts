// observe() against the real API server (Secrets, the LdapPair), the Proxmox
// simulator with the gateway stand-in, and the real PostgreSQL: what it sees
// on an empty cluster, after a server was provisioned by hand, with a foreign
// container carrying ldap1's hostname, with broken Secrets or a wrong token,
// with a misnamed node or storage, and the task recorded in status.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { LdapPair } from "../../src/api/ldappair.js";
import { apiSecretReader } from "../../src/kube/secrets.js";
import { InventoryRegistry } from "../../src/proxmox/inventory.js";
import { ClientPool } from "../../src/reconcile/clients.js";
import { realmMarker } from "../../src/reconcile/desired.js";
import { pairMeta } from "../../src/reconcile/meta.js";
import { observe, type Observed } from "../../src/reconcile/observe.js";
import { InventoryWatches } from "../../src/reconcile/watch.js";
import { realmCreateParams } from "../../src/proxmox/normalize.js";
import { ok, runTask, SEED_REALM } from "../pve-sim/helpers.js";
import { desiredOf, provisionByHand, SECRETS, startWorld, type World } from "./world.js";

let world: World;
let clients: ClientPool;
let registry: InventoryRegistry;
let watches: InventoryWatches;
const registered: string[] = [];

beforeAll(async () => {
  world = await startWorld({
    kubeconfig: inject("kubeconfig"),
    databaseUrl: inject("databaseUrl"),
    namespace: "reconcile-observe",
  });
  clients = new ClientPool({ timeoutMs: 5_000, retry: { retries: 1, minTimeoutMs: 5, maxTimeoutMs: 10 } });
  openSharedInventory();
}, 120_000);

function openSharedInventory() {
  registry = new InventoryRegistry({ intervalMs: 300, busyIntervalMs: 100 });
  watches = new InventoryWatches(registry);
}

afterAll(async () => {
  watches?.close();
  registry?.close();
  clients?.close();
  await world?.stop();
});

/** One observation of `pair`; the inventory is listed after this moment, as after an action. */
function observeNow(pair: LdapPair): Promise<Observed> {
  return observe(
    { clients, watches, readSecret: apiSecretReader(world.kc), probeTimeouts: { connect: 2_000 } },
    {
      key: `${pair.metadata.namespace}/${pair.metadata.name}`,
      pair,
      meta: pairMeta(pair),
      freshness: { notBefore: Date.now() },
      pairs: world.resource,
      registerSecret: (v) => registered.push(v),
    },
  );
}

const server = (o: Observed, name: string) => o.observation.servers.find((s) => s.name === name)!;

describe("observe on an empty cluster", () => {
  it("reads the Secrets, the version, no container, empty image storages, no realm, the nodes' DNS and the database", async () => {
    const pair = await world.createPair("empty");
    const { observation: o, secrets } = await observeNow(pair);
    expect(o.secrets).toEqual({ ok: true });
    expect(o.proxmox).toEqual({ ok: true, release: "9.1" });
    expect(o.servers).toEqual([
      { name: "ldap1", containers: [], foreign: [] },
      { name: "ldap2", containers: [], foreign: [] },
    ]);
    expect(o.images).toEqual({ pve1: [], pve2: [] });
    expect(o.realm).toEqual({});
    expect(Object.keys(o.nodeDns).sort()).toEqual(["pve1", "pve2"]);
    expect(o.nodeDns["pve1"]).toMatchObject({ search: "localdomain", dns1: "127.0.0.53" });
    expect(o.database).toMatchObject({ ok: true, reachable: true });
    expect(o.database?.knownUser).toBeTruthy();
    expect(o.task).toBeUndefined();
    // The secret values reached the redactor, and the observation holds none of them; the token id
    // and the CA bundle are not secret (a 401 or 403 names the token id).
    expect(secrets).toBeDefined();
    for (const value of [secrets!.tokenSecret, secrets!.sqlUri]) {
      expect(registered).toContain(value);
      expect(JSON.stringify(o)).not.toContain(value);
    }
    expect(registered).not.toContain(secrets!.tokenId);
  });
});

describe("observe after provisioning by hand", () => {
  let pair: LdapPair;
  let vmid: number;

  beforeAll(async () => {
    pair = await world.createPair("by-hand");
    vmid = await provisionByHand(world, pair, "ldap1");
    // The realm of the runbook's table, made through the API as an admin would, with our marker.
    const desired = desiredOf(world, pair);
    await ok(world.sim, "POST", "/access/domains", {
      ...realmCreateParams("ldap", desired.realm!.settings),
      comment: realmMarker(pairMeta(pair)),
    });
  }, 120_000);

  afterAll(async () => {
    await ok(world.sim, "DELETE", "/access/domains/ldap").catch(() => undefined);
  });

  it("finds the container by its tags, with its hashes, current config, address and a passing probe", async () => {
    const desired = desiredOf(world, pair).servers[0]!;
    const o = (await observeNow(pair)).observation;
    const [ct, ...more] = server({ observation: o }, "ldap1").containers;
    expect(more).toEqual([]);
    expect(ct).toMatchObject({
      vmid,
      node: "pve1",
      status: "running",
      configHash: desired.configHash,
      buildHash: desired.buildHash,
      pending: {},
    });
    expect(ct!.config).toMatchObject({ hostname: "ldap1", memory: 512 });
    expect(ct!.config!.env).toContain("LDAP_COMMON_NAME=ldap1");
    expect(ct!.address).toBe(world.sim.container(vmid)!.address);
    expect(ct!.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(ct!.probe).toMatchObject({ healthy: true });
    expect(server({ observation: o }, "ldap2").containers).toEqual([]);
    expect(o.images["pve1"]).toContain(desired.imageVolume);
    expect(o.images["pve2"]).toEqual([]);
  });

  it("reads the realm and the pair its marker names", async () => {
    const o = (await observeNow(pair)).observation;
    expect(o.realm?.managedBy).toBe(pair.metadata.uid);
    expect(o.realm?.config).toMatchObject({ base_dn: "dc=example,dc=com", server1: "ldap1" });
    expect(o.realm?.digest).toMatch(/^[0-9a-f]+$/);
  });

  it("sees an env change waiting for the next start among the pending values", async () => {
    const config = (await ok(world.sim, "GET", `/nodes/pve1/lxc/${vmid}/config`)) as Record<string, string>;
    await ok(world.sim, "PUT", `/nodes/pve1/lxc/${vmid}/config`, { env: `${config["env"]}\0EXTRA=1` });
    const [ct] = server(await observeNow(pair), "ldap1").containers;
    expect(Object.keys(ct!.pending!)).toEqual(["env"]);
    expect(String(ct!.pending!["env"])).toContain("EXTRA=1");
    // The current config is what runs: the change is not in it yet.
    expect(ct!.config!.env).not.toContain("EXTRA=1");
  });
});

describe("observe with a foreign ldap1", () => {
  it("reports a container with ldap1's hostname it does not own as foreign, never as ldap1", async () => {
    const pair = await world.createPair("foreign");
    const volid = desiredOf(world, pair).servers[0]!.imageVolume;
    const vmid = Number(await ok(world.sim, "GET", "/cluster/nextid"));
    const created = await runTask(world.sim, "POST", "/nodes/pve1/lxc", {
      vmid,
      ostemplate: volid,
      hostname: "ldap1",
      storage: "local-lvm",
      // Tags of another LdapPair: a hostname proves nothing, and neither does someone else's owner tag.
      tags: "ldappair-owner-00000000-0000-0000-0000-000000000000;ldappair-server-ldap1",
    });
    expect(created["exitstatus"]).toBe("OK");
    try {
      const o = await observeNow(pair);
      // The other pairs' ldap1 of this file count as foreign too: only the tags make a container ours.
      expect(server(o, "ldap1").containers).toEqual([]);
      expect(server(o, "ldap1").foreign).toContainEqual({ vmid, node: "pve1", hostname: "ldap1" });
    } finally {
      await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${vmid}`);
    }
  });

  it("finds our container by its tags whatever its hostname", async () => {
    const pair = await world.createPair("renamed");
    const desired = desiredOf(world, pair).servers[1]!;
    await runTask(world.sim, "POST", `/nodes/pve2/storage/local/oci-registry-pull`, {
      reference: desired.pull.reference,
    }).catch(() => undefined);
    const vmid = Number(await ok(world.sim, "GET", "/cluster/nextid"));
    const created = await runTask(world.sim, "POST", "/nodes/pve2/lxc", {
      vmid,
      ...(desired.create as Record<string, string>),
      hostname: "renamed-by-hand",
      unprivileged: 1,
      onboot: 1,
    });
    expect(created["exitstatus"]).toBe("OK");
    try {
      const o = await observeNow(pair);
      expect(server(o, "ldap2").containers.map((c) => [c.vmid, c.status, c.configHash])).toEqual([
        [vmid, "stopped", desired.configHash],
      ]);
      expect(server(o, "ldap2").foreign).toEqual([]);
    } finally {
      await runTask(world.sim, "DELETE", `/nodes/pve2/lxc/${vmid}`);
    }
  });
});

describe("observe with bad input", () => {
  it("names a missing Secret and a missing key, and contacts nobody", async () => {
    const missing = await world.createPair("no-secret", {
      database: { uriSecretRef: { name: "nowhere", key: "uri" } },
    });
    const a = (await observeNow(missing)).observation;
    expect(a.secrets).toEqual({
      ok: false,
      problem: expect.objectContaining({ reason: "SecretNotFound", transient: false }),
    });
    expect(a.secrets.ok === false && a.secrets.problem.message).toContain("reconcile-observe/nowhere");
    expect(a.database).toBeUndefined();

    const noKey = await world.createPair("no-key", {
      database: { uriSecretRef: { name: SECRETS.database.name, key: "password" } },
    });
    const b = (await observeNow(noKey)).observation;
    expect(b.secrets.ok === false && b.secrets.problem).toMatchObject({ reason: "SecretKeyMissing" });
    expect(b.secrets.ok === false && b.secrets.problem.message).toContain('no key "password"');
    expect(JSON.stringify(b)).not.toContain(world.databaseUrl);
  });

  it("reports a refused token as ProxmoxUnauthorized without its secret", async () => {
    await world.putSecret("wrong-token", {
      tokenId: world.sim.tokenId,
      tokenSecret: "0000-not-the-secret-0000",
    });
    const pair = await world.createPair("wrong-token", {
      proxmox: {
        url: world.sim.url,
        node: "pve1",
        credentialsSecretRef: { ...SECRETS.token, name: "wrong-token" },
        tls: { caSecretRef: { ...SECRETS.ca } },
      },
    });
    const o = (await observeNow(pair)).observation;
    expect(o.proxmox).toEqual({
      ok: false,
      problem: expect.objectContaining({ reason: "ProxmoxUnauthorized", transient: false }),
    });
    expect(JSON.stringify(o)).not.toContain("0000-not-the-secret-0000");
    // The database is checked all the same.
    expect(o.database?.ok).toBe(true);
  });

  it("names an unknown node and a storage that cannot hold root disks", async () => {
    const unknown = await world.createPair("unknown-node", {
      servers: [
        { name: "ldap1", node: "pve1" },
        { name: "ldap2", node: "pve9" },
      ],
    });
    const a = (await observeNow(unknown)).observation;
    expect(a.proxmox.ok === false && a.proxmox.problem).toMatchObject({
      reason: "NodeNotFound",
      transient: false,
    });
    expect(a.proxmox.ok === false && a.proxmox.problem.message).toContain("pve9");

    const wrongStorage = await world.createPair("wrong-storage", {
      proxmox: {
        url: world.sim.url,
        node: "pve1",
        credentialsSecretRef: { ...SECRETS.token },
        tls: { caSecretRef: { ...SECRETS.ca } },
        rootStorage: "local",
      },
    });
    const b = (await observeNow(wrongStorage)).observation;
    expect(b.proxmox.ok === false && b.proxmox.problem).toMatchObject({ reason: "StorageContentMissing" });
    expect(b.proxmox.ok === false && b.proxmox.problem.message).toContain("rootdir");
  });
});

describe("the shared inventory snapshot and its freshness", () => {
  it("reads the shared snapshot, but lists again once a task is seen to end after it was taken", async () => {
    // One poll a minute: after the first, only a listing of its own can show anything new.
    const slow = new InventoryRegistry({ intervalMs: 60_000, busyIntervalMs: 60_000 });
    const slowWatches = new InventoryWatches(slow);
    // The shared poller still lists this endpoint every 300 ms for the pairs of earlier tests:
    // quiet it, so that every listing counted here is this test's own.
    watches.close();
    registry.close();
    const pair = await world.createPair("freshness");
    const key = `${pair.metadata.namespace}/${pair.metadata.name}`;
    const freshness = { notBefore: 0 };
    const look = (p: LdapPair) =>
      observe(
        { clients, watches: slowWatches, readSecret: apiSecretReader(world.kc) },
        { key, pair: p, meta: pairMeta(p), freshness, registerSecret: () => undefined },
      );
    try {
      expect(server(await look(pair), "ldap1").containers).toEqual([]);
      const desired = desiredOf(world, pair).servers[0]!;
      await runTask(world.sim, "POST", "/nodes/pve1/storage/local/oci-registry-pull", {
        reference: desired.pull.reference,
      }).catch(() => undefined);
      const vmid = Number(await ok(world.sim, "GET", "/cluster/nextid"));
      const upid = String(
        await ok(world.sim, "POST", "/nodes/pve1/lxc", {
          vmid,
          ...(desired.create as Record<string, string>),
          unprivileged: 1,
          onboot: 1,
        }),
      );
      await world.sim.waitTask(upid);
      const listings = () => world.sim.requestLog.find("GET", "/cluster/resources").length;
      const before = listings();
      // Nothing says the cluster changed: the snapshot of a minute's poll is used, no call is made.
      expect(server(await look(pair), "ldap1").containers).toEqual([]);
      expect(listings()).toBe(before);
      // The create task in status has ended: what it made must be seen, so the cluster is listed again.
      const recorded = await world.patchStatus("freshness", {
        task: {
          upid,
          action: "CreateContainer",
          server: "ldap1",
          node: "pve1",
          vmid,
          startedAt: new Date().toISOString(),
        },
      });
      const seen = await look({ ...pair, status: recorded.status! });
      expect(seen.observation.task).toMatchObject({ upid, state: "ok" });
      expect(server(seen, "ldap1").containers.map((c) => c.vmid)).toEqual([vmid]);
      expect(listings()).toBe(before + 1);
      // And from then on, a snapshot older than that end is never used again.
      expect(server(await look(pair), "ldap1").containers.map((c) => c.vmid)).toEqual([vmid]);
      await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${vmid}`);
    } finally {
      slowWatches.close();
      slow.close();
      openSharedInventory();
    }
  });
});

describe("observe with a token that may not read everything", () => {
  it("keeps what it could read and names each read it could not, with the privilege and path", async () => {
    const token = world.sim.addToken({
      id: "root@pam!no-node-audit",
      privileges: { "/vms": ["VM.Audit"], "/storage": ["Datastore.Audit"] },
    });
    await world.putSecret("limited-token", { tokenId: token.id, tokenSecret: token.secret });
    const pair = await world.createPair("limited", {
      proxmox: {
        url: world.sim.url,
        node: "pve1",
        credentialsSecretRef: { ...SECRETS.token, name: "limited-token" },
        tls: { caSecretRef: { ...SECRETS.ca } },
      },
    });
    const o = (await observeNow(pair)).observation;
    expect(o.proxmox.ok).toBe(true);
    expect(o.images).toEqual({ pve1: expect.any(Array), pve2: expect.any(Array) });
    // Neither the nodes' DNS (Sys.Audit on /nodes/...) nor the realm (Realm.Allocate or Sys.Audit) could be read.
    expect(o.nodeDns).toEqual({});
    expect(o.realm).toBeUndefined();
    const problems = o.readProblems ?? [];
    expect(problems.map((p) => p.reason)).toEqual([
      "ProxmoxForbidden",
      "ProxmoxForbidden",
      "ProxmoxForbidden",
    ]);
    const text = problems.map((p) => p.message).join("\n");
    expect(text).toMatch(/reading the realm ldap: .*Realm\.Allocate or Sys\.Audit on \/access\/realm\/ldap/);
    expect(text).toMatch(/reading the DNS of node pve1: .*Sys\.Audit on \/nodes\/pve1/);
    expect(text).toMatch(/reading the DNS of node pve2: .*Sys\.Audit on \/nodes\/pve2/);
    expect(text).not.toContain(token.secret);
  });
});

describe("observe the task recorded in status", () => {
  it("reads a running task, then its end, from the node named in the UPID", async () => {
    const pair = await world.createPair("task");
    world.sim.setSpeed(1);
    let upid: string;
    try {
      upid = String(
        await ok(world.sim, "POST", "/nodes/pve2/storage/local/oci-registry-pull", {
          reference: "ghcr.io/mieweb/ldap-gateway:9.9.9",
        }),
      );
      const recorded = await world.patchStatus("task", {
        task: { upid, action: "PullImage", node: "pve2", startedAt: new Date().toISOString() },
      });
      const running = (await observeNow({ ...pair, status: recorded.status! })).observation;
      expect(running.task).toEqual({ upid, state: "running" });
    } finally {
      world.sim.setSpeed(0.01);
    }
    await world.sim.waitTask(upid);
    const after = await world.getPair("task");
    const ended = (await observeNow(after)).observation;
    expect(ended.task).toEqual({ upid, state: "ok", exitStatus: "OK" });
    expect(ended.images["pve2"]).toContain("local:vztmpl/ldap-gateway_9.9.9.tar");
  });

  it("reads a realm sync with its log, and a task no node knows as failed", async () => {
    const pair = await world.createPair("sync");
    await ok(world.sim, "POST", "/access/domains", { ...SEED_REALM, realm: "synced" });
    const upid = String(await ok(world.sim, "POST", "/access/domains/synced/sync", { scope: "users" }));
    await world.sim.waitTask(upid);
    const withSync = await world.patchStatus("sync", {
      task: { upid, action: "SyncRealm", startedAt: new Date().toISOString() },
    });
    const o = (await observeNow({ ...pair, status: withSync.status! })).observation;
    expect(o.task?.state).toMatch(/^(ok|failed)$/);
    expect(
      o.task && "log" in o.task && o.task.log!.some((l) => l.includes("starting sync for realm synced")),
    ).toBe(true);

    const lost = upid.replace(/:[0-9A-F]{8}:[0-9A-F]{8}:/, ":0000ABCD:00001234:");
    const withLost = await world.patchStatus("sync", {
      task: { upid: lost, action: "StartContainer", startedAt: new Date().toISOString() },
    });
    const l = (await observeNow({ ...pair, status: withLost.status! })).observation;
    expect(l.task).toMatchObject({ upid: lost, state: "failed" });
  });
});
