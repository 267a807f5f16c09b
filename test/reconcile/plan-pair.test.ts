// The planner's pair-level states (rows F, S, P, T, M, Q and Y of the table
// in plan.ts): the finalizer, bad input and Proxmox faults, the task in
// status, the realm, node DNS and syncs.
import { describe, expect, it } from "vitest";
import type { LdapPairStatus } from "../../src/api/ldappair.js";
import type { ObservedTask, Problem } from "../../src/reconcile/model.js";
import { SYNC_NOW_ANNOTATION } from "../../src/reconcile/model.js";
import { realmManagerOf, realmMarker } from "../../src/reconcile/desired.js";
import { setConditions } from "../../src/runtime/conditions.js";
import { DATABASE_DOWN, FAILING_PROBE, META, OTHER_UID, SQL_PASSWORD, stoppedContainer } from "./fixtures.js";
import {
  NOW,
  ago,
  container,
  desiredServer,
  expectPlan,
  realmAsCreated,
  run,
  steadyWorld,
  withContainer,
  withServer,
  type Expectation,
  type World,
} from "./plan-world.js";

type Row = [string, () => World, Expectation];

const steady = () => steadyWorld();
const UPID = (type: string, id: string) =>
  `UPID:pve1:0000A1B2:0012C3D4:674C1B2D:${type}:${id}:root@pam!operator:`;
const problem = (reason: string, message: string, transient = false): Problem => ({
  reason,
  message,
  transient,
});
const withProxmoxProblem = (p: Problem) => {
  const w = steady();
  return { ...w, observed: { ...w.observed, proxmox: { ok: false as const, problem: p } } };
};
const withSecretsProblem = (p: Problem) => {
  const w = steady();
  const { desired: _desired, ...rest } = w;
  return { ...rest, observed: { ...w.observed, secrets: { ok: false as const, problem: p } } };
};
const withTask = (w: World, task: LdapPairStatus["task"], seen?: ObservedTask): World => ({
  ...w,
  status: { ...w.status, task },
  observed: { ...w.observed, ...(seen ? { task: seen } : {}) },
});

describe("a new generation", () => {
  it("that changes nothing in Proxmox (the sync interval) is Ready for that generation at once", () => {
    const w = steadyWorld({ realm: { syncInterval: "2h" } });
    const p = expectPlan({ ...w, meta: { ...META, generation: 2 } }, { action: null, ready: true });
    expect(p.status.phase).toBe("Ready");
  });

  it("that needs work is not Ready until it is done", () => {
    const w = steadyWorld({ resources: { cores: 2 } });
    const old = steadyWorld();
    expectPlan(
      { ...w, meta: { ...META, generation: 2 }, observed: { ...w.observed, servers: old.observed.servers } },
      { action: { kind: "UpdateInPlace", set: { cores: "2" } }, ready: false, reconciling: true },
    );
  });
});

describe("before anything: the finalizer", () => {
  it.each<Row>([
    [
      "a new LdapPair: the finalizer first, Ready False from the first reconcile",
      () => ({ ...steady(), meta: { ...META, hasFinalizer: false }, status: {} }),
      { action: { kind: "AddFinalizer" }, ready: false, reconciling: true, phase: "Pending" },
    ],
    [
      "a new LdapPair while Proxmox is unreachable: still the finalizer first",
      () => ({
        ...withProxmoxProblem(problem("ProxmoxUnreachable", "x", true)),
        meta: { ...META, hasFinalizer: false },
        status: {},
      }),
      { action: { kind: "AddFinalizer" } },
    ],
  ])("%s", (_n, w, e) => {
    expectPlan(w(), e);
  });
});

describe("bad input and Proxmox faults: a clear condition, nothing done", () => {
  const rows: Row[] = [
    [
      "the database Secret is missing",
      () => withSecretsProblem(problem("SecretNotFound", "Secret ldap/manager-db not found")),
      {
        action: null,
        stalled: "SecretNotFound",
        ready: false,
        reconciling: false,
        phase: "Stalled",
        events: ["SecretNotFound"],
        requeueMs: 300_000,
      },
    ],
    [
      "the Secret lacks its key",
      () =>
        withSecretsProblem(problem("SecretKeyMissing", 'key "uri" of Secret ldap/manager-db does not exist')),
      { action: null, stalled: "SecretKeyMissing", message: /key "uri" of Secret ldap\/manager-db/ },
    ],
    [
      "the SQL URI is malformed",
      () =>
        withSecretsProblem(
          problem(
            "SqlUriMalformed",
            'key "uri" of Secret ldap/manager-db is not a postgres:// or postgresql:// URI with a host, such as postgres://user@db.example.com:5432/database (the password after the user and a colon)',
          ),
        ),
      { action: null, stalled: "SqlUriMalformed" },
    ],
    [
      "a wrong token (401)",
      () =>
        withProxmoxProblem(
          problem(
            "ProxmoxUnauthorized",
            "Proxmox at https://pve:8006 refused API token op@pve!op (401 authentication failure): check the token id and secret",
          ),
        ),
      { action: null, stalled: "ProxmoxUnauthorized", message: /refused API token op@pve!op/ },
    ],
    [
      "a missing privilege (403), named with its path",
      () =>
        withProxmoxProblem(
          problem(
            "ProxmoxForbidden",
            "API token op@pve!op lacks privilege VM.Audit on /vms: GET /cluster/resources answered 403",
          ),
        ),
      { action: null, stalled: "ProxmoxForbidden", message: /lacks privilege VM\.Audit on \/vms/ },
    ],
    [
      "Proxmox older than 9.1",
      () =>
        withProxmoxProblem(
          problem(
            "ProxmoxVersionUnsupported",
            "Proxmox VE 8.4.1 is older than 9.1: OCI containers need 9.1 or newer",
          ),
        ),
      { action: null, stalled: "ProxmoxVersionUnsupported", message: /older than 9\.1/ },
    ],
    [
      "an unknown node",
      () => withProxmoxProblem(problem("NodeNotFound", "no such cluster node 'pve9'")),
      { action: null, stalled: "NodeNotFound" },
    ],
    [
      "an unknown storage",
      () =>
        withProxmoxProblem(
          problem("StorageNotFound", "node pve1 has no storage nfs for spec.proxmox.imageStorage"),
        ),
      { action: null, stalled: "StorageNotFound" },
    ],
    [
      "a storage without vztmpl content",
      () =>
        withProxmoxProblem(
          problem("StorageContentMissing", "storage local on node pve1 does not allow content vztmpl"),
        ),
      { action: null, stalled: "StorageContentMissing" },
    ],
    [
      "Proxmox unreachable: Reconciling, retried soon, not Stalled",
      () =>
        withProxmoxProblem(
          problem(
            "ProxmoxUnreachable",
            "GET /version at https://pve:8006: could not connect (ECONNREFUSED)",
            true,
          ),
        ),
      {
        action: null,
        stalled: false,
        reconciling: true,
        ready: false,
        reason: "ProxmoxUnreachable",
        requeueMs: 15_000,
        phase: "Ready",
      },
    ],
    [
      "the database down: DatabaseReachable False, the pair not Ready, nothing taken down",
      () => {
        const w = steady();
        const servers = w.observed.servers.map((s) => ({
          ...s,
          containers: [{ ...s.containers[0]!, probe: FAILING_PROBE, uptimeSeconds: 30 }],
        }));
        return { ...w, observed: { ...w.observed, servers, database: DATABASE_DOWN } };
      },
      {
        action: null,
        ready: false,
        message: /database unreachable: connect ECONNREFUSED.*nothing is taken down/,
        events: ["DatabaseUnreachable"],
      },
    ],
    [
      "the database still down: no second Warning while the reason stays the same",
      () => {
        const w = steady();
        const down = expectPlan({ ...w, observed: { ...w.observed, database: DATABASE_DOWN } }, {});
        const conditions = setConditions(w.status.conditions ?? [], down.conditions, 1, NOW);
        return {
          ...w,
          status: { ...w.status, conditions },
          observed: { ...w.observed, database: DATABASE_DOWN },
        };
      },
      { action: null, status: () => undefined, onlyEvents: [] },
    ],
    [
      "the wrong database password",
      () => {
        const w = steady();
        const db = {
          ...DATABASE_DOWN,
          connectError: 'password authentication failed for user "manager"',
          problem: 'database unreachable: password authentication failed for user "manager"',
        };
        return { ...w, observed: { ...w.observed, database: db } };
      },
      {
        status: (s) => expect(s.database).toMatchObject({ reachable: false }),
        events: ["DatabaseAuthFailed"],
      },
    ],
  ];
  it.each(rows)("%s", (_n, w, e) => {
    const p = expectPlan(w(), e);
    expect(p.action).toBeUndefined();
  });

  it.each<Row>([
    [
      "the realm unreadable for a missing privilege: Stalled naming it, the servers still looked after",
      () => {
        const w = withContainer(steady(), "ldap1", undefined);
        const p = problem(
          "ProxmoxForbidden",
          "API token op@pve!op lacks privilege Realm.Allocate on /access/realm: GET /access/domains/ldap answered 403",
        );
        return { ...w, observed: { ...w.observed, realm: undefined, readProblems: [p] } };
      },
      {
        action: { kind: "CreateContainer", server: "ldap1" },
        stalled: "ProxmoxForbidden",
        message: /lacks privilege Realm\.Allocate on \/access\/realm/,
      },
    ],
    [
      "a node's DNS unreadable for a moment: Reconciling, retried",
      () => {
        const w = steadyWorld({ nodeDns: { nameserver: "10.0.0.2" } });
        const p = problem(
          "ProxmoxNodeUnreachable",
          "GET /nodes/pve1/dns: 596 tls_process_server_certificate",
          true,
        );
        return { ...w, observed: { ...w.observed, readProblems: [p] } };
      },
      { action: null, stalled: false, reconciling: true, requeueMs: 15_000 },
    ],
  ])("%s", (_n, w, e) => {
    expectPlan(w(), e);
  });

  it.each([
    ["connect ECONNREFUSED 10.0.0.9:5432", false, "DatabaseUnreachable"],
    ['password authentication failed for user "manager"', false, "DatabaseAuthFailed"],
    ['database "manager" does not exist', false, "DatabaseNotFound"],
    ["the SQL URI is not a postgres:// or postgresql:// URI with a host", false, "DatabaseUriInvalid"],
    [undefined, true, "DatabaseQueryFailed"],
  ])("the database preflight %j (reachable %s) is reason %s", (connectError, reachable, reason) => {
    const w = steady();
    const db = { ...DATABASE_DOWN, reachable, ...(connectError ? { connectError } : {}) };
    const p = run({ ...w, observed: { ...w.observed, database: db } });
    expect(p.conditions.find((c) => c.type === "DatabaseReachable")).toMatchObject({
      status: "False",
      reason,
    });
  });

  it("does not repeat a problem's Warning while it lasts", () => {
    const w = withSecretsProblem(problem("SecretNotFound", "Secret ldap/manager-db not found"));
    const first = run(w);
    const again = run({
      ...w,
      status: {
        ...w.status,
        conditions: first.conditions.map((c) => ({ ...c, lastTransitionTime: ago(0) })),
      },
    });
    expect(again.events).toEqual([]);
  });
});

describe("the task in status", () => {
  const create = {
    upid: UPID("vzcreate", "101"),
    action: "CreateContainer" as const,
    server: "ldap1",
    node: "pve1",
    startedAt: ago(10),
  };
  const ldap1Gone = () => withContainer(steady(), "ldap1", undefined);
  const rows: Row[] = [
    [
      "running: wait, look again in a second",
      () => withTask(ldap1Gone(), create, { upid: create.upid, state: "running" }),
      {
        action: null,
        reason: "CreateContainerRunning",
        requeueMs: 1_000,
        status: (s) => expect(s.task).toEqual(create),
      },
    ],
    [
      "its status unreadable: wait, the task stays recorded",
      () =>
        withTask(ldap1Gone(), create, {
          upid: create.upid,
          state: "unknown",
          problem: problem("ProxmoxNodeUnreachable", "node pve1 unreachable", true),
        }),
      { action: null, reason: "TaskUnreadable", status: (s) => expect(s.task).toEqual(create) },
    ],
    [
      "nothing observed yet about it: wait",
      () => withTask(ldap1Gone(), create),
      { action: null, reason: "CreateContainerRunning" },
    ],
    [
      "ended OK, the container there and stopped: forgotten, event, and the next step in the same plan",
      () =>
        withTask(
          withContainer(
            steady(),
            "ldap1",
            stoppedContainer(desiredServer(steady(), "ldap1"), 101, { fresh: true }),
          ),
          create,
          { upid: create.upid, state: "ok", exitStatus: "OK" },
        ),
      {
        action: { kind: "ConfigureEnv", server: "ldap1" },
        events: ["ContainerCreated", "ConfiguringEnv"],
        status: (s) => {
          expect("task" in s && s.task === undefined).toBe(true);
          // A new container since the last sync: a sync is owed once it serves.
          expect(s.realm?.pendingSync).toBe("ServerRebuilt");
        },
      },
    ],
    [
      "ended OK but Proxmox shows no container (it contradicts): created again",
      () => withTask(ldap1Gone(), create, { upid: create.upid, state: "ok", exitStatus: "OK" }),
      { action: { kind: "CreateContainer", server: "ldap1" } },
    ],
    [
      "failed: recorded, a Warning, and retried only after the backoff",
      () =>
        withTask(ldap1Gone(), create, {
          upid: create.upid,
          state: "failed",
          exitStatus: "unable to create CT 101 - storage 'local-lvm' does not exist",
        }),
      {
        action: null,
        events: ["CreateFailed"],
        requeueMs: 10_000,
        status: (s) =>
          expect(s.lastFailure).toMatchObject({
            action: "CreateContainer",
            server: "ldap1",
            attempts: 1,
            reason: "CreateFailed",
            time: ago(0),
          }),
        message: /storage 'local-lvm' does not exist/,
      },
    ],
    [
      "failed the third time: Stalled, still retried later",
      () => {
        const w = withTask(ldap1Gone(), create, {
          upid: create.upid,
          state: "failed",
          exitStatus: "pull failed",
        });
        return {
          ...w,
          status: {
            ...w.status,
            lastFailure: {
              action: "CreateContainer",
              server: "ldap1",
              time: ago(60),
              attempts: 2,
              message: "x",
              reason: "CreateFailed",
            },
          },
        };
      },
      {
        action: null,
        stalled: "CreateFailed",
        requeueMs: 40_000,
        status: (s) => expect(s.lastFailure?.attempts).toBe(3),
      },
    ],
    [
      "a failure whose backoff has passed: retried",
      () => {
        const w = ldap1Gone();
        return {
          ...w,
          status: {
            ...w.status,
            lastFailure: {
              action: "CreateContainer",
              server: "ldap1",
              time: ago(11),
              attempts: 1,
              message: "x",
              reason: "CreateFailed",
            },
          },
        };
      },
      { action: { kind: "CreateContainer", server: "ldap1" } },
    ],
    [
      "an image pull that failed: the reason is ImagePullFailed",
      () => {
        const w = withContainer(steady(), "ldap1", undefined);
        const observed = { ...w.observed, images: { pve1: [] } };
        const pull = {
          upid: UPID("ociregistrypull", "local"),
          action: "PullImage" as const,
          node: "pve1",
          startedAt: ago(30),
        };
        return withTask({ ...w, observed }, pull, {
          upid: pull.upid,
          state: "failed",
          exitStatus: "failed to pull: manifest unknown",
        });
      },
      { action: null, events: ["ImagePullFailed"], message: /manifest unknown/ },
    ],
  ];
  it.each(rows)("%s", (_n, w, e) => {
    expectPlan(w(), e);
  });

  it("a start that ended OK records when the server started", () => {
    const start = {
      upid: UPID("vzstart", "101"),
      action: "StartContainer" as const,
      server: "ldap1",
      node: "pve1",
      vmid: 101,
      startedAt: ago(5),
    };
    const p = run(withTask(steady(), start, { upid: start.upid, state: "ok", exitStatus: "OK" }));
    expect(p.status.servers![0]!.startedAt).toBe(ago(0));
    expect(p.events.map((e) => e.reason)).toEqual(["ContainerStarted"]);
  });
});

describe("the realm", () => {
  const realmWith = (w: World, realm: World["observed"]["realm"]) => ({
    ...w,
    observed: { ...w.observed, realm },
  });
  const rows: Row[] = [
    [
      "no realm: created with the runbook's table and the marker; a sync is owed",
      () => realmWith(steady(), {}),
      {
        action: {
          kind: "CreateRealm",
          name: "ldap",
          params: {
            realm: "ldap",
            type: "ldap",
            base_dn: "dc=example,dc=com",
            server1: "ldap1",
            server2: "ldap2",
            mode: "ldaps",
            verify: "0",
            default: "1",
            sync_attributes: "email=mail",
            "sync-defaults-options": "scope=both",
            user_attr: "uid",
            comment: realmMarker(META, "created"),
          },
        },
        events: ["CreatingRealm"],
        status: (s) => expect(s.realm?.pendingSync).toBe("RealmCreated"),
      },
    ],
    [
      "a setting drifted (server2 changed by hand): only that is PUT, with the digest",
      () => {
        const w = steady();
        const realm = realmAsCreated(w.desired!);
        return realmWith(w, { ...realm, config: { ...realm.config, server2: "ldap9" } });
      },
      {
        action: {
          kind: "UpdateRealm",
          name: "ldap",
          set: { server2: "ldap2" },
          delete: [],
          digest: "realm-digest-1",
        },
        events: ["UpdatingRealm"],
        status: (s) => expect(s.realm?.pendingSync).toBe("RealmUpdated"),
      },
    ],
    [
      "the same settings in Proxmox's spelling (sorted, 1/0): no PUT",
      () => {
        const w = steady();
        const realm = realmAsCreated(w.desired!);
        return realmWith(w, { ...realm, config: { ...realm.config, verify: 0, default: 1, port: 636 } });
      },
      { action: null, ready: true },
    ],
    [
      "realm.syncNames turned on: sync_attributes gains the names",
      () => {
        const w = steadyWorld({ realm: { syncNames: true } });
        return realmWith(w, realmAsCreated(steady().desired!));
      },
      {
        action: {
          kind: "UpdateRealm",
          set: { sync_attributes: "email=mail,firstname=givenname,lastname=sn" },
        },
      },
    ],
    [
      "a realm managed by another LdapPair: left alone, Conflict",
      () => {
        const realm = realmAsCreated(steady().desired!);
        const comment = realmMarker({ ...META, name: "site-b", uid: OTHER_UID }, "created");
        return realmWith(steady(), { ...realm, config: { ...realm.config, comment }, managedBy: OTHER_UID });
      },
      {
        action: null,
        conflict: "RealmConflict",
        stalled: "RealmConflict",
        ready: false,
        message: /managed by another LdapPair \(uid aaaaaaaa/,
      },
    ],
    [
      "a realm managed by another LdapPair, a sync due: never synced",
      () => {
        const realm = realmAsCreated(steady().desired!);
        const comment = realmMarker({ ...META, name: "site-b", uid: OTHER_UID }, "created");
        const w = realmWith(steady(), {
          ...realm,
          config: { ...realm.config, comment },
          managedBy: OTHER_UID,
        });
        return { ...w, status: { ...w.status, realm: { ...w.status.realm!, lastSyncTime: ago(7200) } } };
      },
      { action: null, conflict: "RealmConflict" },
    ],
    [
      "a realm nobody manages, adopt off, never synced: not synced either",
      () => {
        const realm = realmAsCreated(steady().desired!);
        const { managedBy: _m, ...rest } = realm;
        const w = realmWith(steady(), { ...rest, config: { ...realm.config, comment: "made by hand" } });
        const { lastSyncTime: _t, ...neverSynced } = w.status.realm!;
        return { ...w, status: { ...w.status, realm: neverSynced } };
      },
      { action: null, conflict: "RealmConflict" },
    ],
    [
      "a realm nobody manages, adopt off: left alone, Conflict says how to adopt it",
      () => {
        const realm = realmAsCreated(steady().desired!);
        const { managedBy: _m, ...rest } = realm;
        return realmWith(steady(), { ...rest, config: { ...realm.config, comment: "made by hand" } });
      },
      { action: null, conflict: "RealmConflict", message: /set spec.realm.adopt: true/ },
    ],
    [
      "a realm nobody manages, adopt on: adopted (marker says adopted)",
      () => {
        const w = steadyWorld({ realm: { adopt: true } });
        const realm = realmAsCreated(w.desired!);
        const { managedBy: _m, ...rest } = realm;
        return realmWith(w, { ...rest, config: { ...realm.config, comment: "made by hand" } });
      },
      {
        action: { kind: "UpdateRealm", set: { comment: realmMarker(META, "adopted") } },
        events: ["AdoptingRealm"],
      },
    ],
    [
      "realm.manage off: no realm calls, Ready without syncs",
      () => {
        const w = steadyWorld({ realm: { manage: false } });
        return { ...w, observed: { ...w.observed, realm: undefined } };
      },
      {
        action: null,
        ready: true,
        status: (s) => expect(s.realm).toEqual({ name: "ldap", syncState: "Unmanaged" }),
      },
    ],
  ];
  it.each(rows)("%s", (_n, w, e) => {
    expectPlan(w(), e);
  });

  it("reads its marker back", () => {
    expect(realmManagerOf(realmMarker(META, "adopted"))).toBe(META.uid);
  });
});

describe("node DNS", () => {
  const dnsWorld = (
    dns: Record<string, { search?: string; dns1?: string; dns2?: string }>,
    recorded?: LdapPairStatus["nodeDns"],
  ) => {
    const w = steadyWorld({ nodeDns: { nameserver: "10.0.0.2" } });
    return {
      ...w,
      status: { ...w.status, ...(recorded ? { nodeDns: recorded } : {}) },
      observed: { ...w.observed, nodeDns: dns },
    };
  };
  const rows: Row[] = [
    [
      "a node resolving elsewhere, its DNS not yet recorded: recorded first, no call",
      () => dnsWorld({ pve1: { search: "lan", dns1: "192.168.1.1" } }),
      {
        action: null,
        requeueMs: 1,
        status: (s) =>
          expect(s.nodeDns).toEqual([{ node: "pve1", previous: { search: "lan", dns1: "192.168.1.1" } }]),
      },
    ],
    [
      "recorded: set to the site's DNSMasq first, the node's own kept behind it",
      () =>
        dnsWorld({ pve1: { search: "lan", dns1: "192.168.1.1" } }, [
          { node: "pve1", previous: { search: "lan", dns1: "192.168.1.1" } },
        ]),
      {
        action: {
          kind: "SetNodeDns",
          node: "pve1",
          dns: { search: "example.com", dns1: "10.0.0.2", dns2: "192.168.1.1" },
        },
        events: ["SettingNodeDns"],
      },
    ],
    [
      "already as wanted: nothing, the record kept for deletion",
      () =>
        dnsWorld({ pve1: { search: "example.com", dns1: "10.0.0.2", dns2: "192.168.1.1" } }, [
          { node: "pve1", previous: { search: "lan", dns1: "192.168.1.1" } },
        ]),
      { action: null, ready: true, status: (s) => expect(s.nodeDns).toHaveLength(1) },
    ],
    [
      "not read: wait",
      () => dnsWorld({}),
      { action: null, ready: false, explanation: /DNS of node pve1 was not read/ },
    ],
  ];
  it.each(rows)("%s", (_n, w, e) => {
    expectPlan(w(), e);
  });
});

describe("syncs", () => {
  const withRealmStatus = (w: World, realm: LdapPairStatus["realm"]) => ({
    ...w,
    status: { ...w.status, realm },
  });
  const synced = () => steady().status.realm!;
  const syncTask = {
    upid: UPID("auth-realm-sync", "ldap"),
    action: "SyncRealm" as const,
    node: "pve1",
    startedAt: ago(3),
  };
  const rows: Row[] = [
    [
      "after the realm was created: synced once a server is healthy; not Ready before",
      () => withRealmStatus(steady(), { name: "ldap", pendingSync: "RealmCreated" }),
      {
        action: { kind: "SyncRealm", name: "ldap", node: "pve1" },
        ready: false,
        events: ["SyncingRealm"],
        status: (s) => expect(s.realm).toMatchObject({ syncState: "Syncing", pendingSync: "RealmCreated" }),
      },
    ],
    [
      "a server rebuilt since the last sync: synced again, not Ready until then",
      () => withRealmStatus(steady(), { ...synced(), pendingSync: "ServerRebuilt" }),
      { action: { kind: "SyncRealm" }, ready: false, explanation: /because a server was rebuilt/ },
    ],
    [
      "the realm's settings changed: synced again",
      () => withRealmStatus(steady(), { ...synced(), pendingSync: "RealmUpdated" }),
      { action: { kind: "SyncRealm" }, ready: false, explanation: /because the realm's settings changed/ },
    ],
    [
      "never synced: synced",
      () => withRealmStatus(steady(), { name: "ldap" }),
      { action: { kind: "SyncRealm" }, ready: false },
    ],
    [
      "the sync-now annotation changed: synced, the pair stays Ready",
      () => ({
        ...steady(),
        meta: { ...META, annotations: { [SYNC_NOW_ANNOTATION]: "2026-12-01T12:00:00Z" } },
      }),
      { action: { kind: "SyncRealm" }, ready: true },
    ],
    [
      "the sync-now annotation already answered: nothing",
      () => ({
        ...withRealmStatus(steady(), { ...synced(), syncRequest: "a" }),
        meta: { ...META, annotations: { [SYNC_NOW_ANNOTATION]: "a" } },
      }),
      { action: null, ready: true },
    ],
    [
      "syncInterval passed: synced, still Ready",
      () => withRealmStatus(steady(), { ...synced(), lastSyncTime: ago(3601) }),
      { action: { kind: "SyncRealm" }, ready: true },
    ],
    [
      "syncInterval 0s: no periodic sync",
      () =>
        withRealmStatus(steadyWorld({ realm: { syncInterval: "0s" } }), {
          ...synced(),
          lastSyncTime: ago(86_400),
        }),
      { action: null, ready: true, requeueMs: 600_000 },
    ],
    [
      "owed, the database down: wait",
      () => {
        const w = withRealmStatus(steady(), { name: "ldap", pendingSync: "RealmCreated" });
        return { ...w, observed: { ...w.observed, database: DATABASE_DOWN } };
      },
      { action: null, explanation: /sync the realm \(RealmCreated\): the database preflight failed/ },
    ],
    [
      "owed, no server healthy yet: wait",
      () => {
        const w = withRealmStatus(steady(), { name: "ldap", pendingSync: "RealmCreated" });
        const servers = w.observed.servers.map((s) => ({
          ...s,
          containers: [{ ...s.containers[0]!, probe: FAILING_PROBE, uptimeSeconds: 10 }],
        }));
        return { ...w, observed: { ...w.observed, servers } };
      },
      { action: null, ready: false },
    ],
    [
      "owed, a failed sync 5 s ago: backoff",
      () => ({
        ...withRealmStatus(steady(), { ...synced(), pendingSync: "ServerRebuilt", syncState: "Failed" }),
        status: {
          ...steady().status,
          realm: { ...synced(), pendingSync: "ServerRebuilt", syncState: "Failed" },
          lastFailure: {
            action: "SyncRealm",
            time: ago(5),
            attempts: 1,
            message: "sync failed",
            reason: "SyncFailed",
          },
        },
      }),
      { action: null, ready: false, requeueMs: 5_000 },
    ],
    [
      "a sync ended OK: counts from its log in status, the reason it answered, Ready",
      () =>
        withTask(
          withRealmStatus(steady(), { ...synced(), pendingSync: "ServerRebuilt", syncState: "Syncing" }),
          syncTask,
          {
            upid: syncTask.upid,
            state: "ok",
            exitStatus: "OK",
            log: [
              "adding user 'alice@ldap'",
              "adding user 'bob@ldap'",
              "adding group 'devs-ldap' (2 members)",
            ],
          },
        ),
      {
        action: null,
        ready: true,
        events: ["RealmSynced"],
        status: (s) =>
          expect(s.realm).toMatchObject({
            syncState: "Synced",
            lastSyncTime: ago(0),
            lastSyncTask: syncTask.upid,
            lastSyncReason: "ServerRebuilt",
            usersImported: 2,
            groupsImported: 1,
            groupsWithoutMembers: 0,
          }),
      },
    ],
    [
      "a sync with the runbook's queries: groups without members noted with the switch that fixes it",
      () =>
        withTask(
          withRealmStatus(steadyWorld({ groupMembers: false }), {
            name: "ldap",
            pendingSync: "RealmCreated",
          }),
          syncTask,
          {
            upid: syncTask.upid,
            state: "ok",
            exitStatus: "OK",
            log: ["adding user 'alice@ldap'", "adding group 'devs-ldap' (0 members)"],
          },
        ),
      {
        message: /1 group\(s\) imported without members.*set spec.groupMembers: true/,
        status: (s) => expect(s.realm?.membersMissing).toMatch(/spec.groupMembers: true/),
      },
    ],
    [
      "a sync failed: RealmSynced False, a Warning, not Ready, retried after the backoff",
      () =>
        withTask(
          withRealmStatus(steady(), { ...synced(), pendingSync: "Interval", syncState: "Syncing" }),
          syncTask,
          { upid: syncTask.upid, state: "failed", exitStatus: "ldap search failed" },
        ),
      {
        action: null,
        ready: false,
        events: ["SyncFailed"],
        message: /the last sync failed: ldap search failed/,
        status: (s) => expect(s.realm?.syncState).toBe("Failed"),
      },
    ],
    [
      "a sync-now answered: the request recorded",
      () => ({
        ...withTask(
          steady(),
          { ...syncTask, syncRequest: "r1" },
          { upid: syncTask.upid, state: "ok", exitStatus: "OK", log: [] },
        ),
        meta: { ...META, annotations: { [SYNC_NOW_ANNOTATION]: "r1" } },
      }),
      { action: null, status: (s) => expect(s.realm?.syncRequest).toBe("r1") },
    ],
  ];
  it.each(rows)("%s", (_n, w, e) => {
    expectPlan(w(), e);
  });

  it("a first sync running: not Ready yet", () => {
    const w = withTask(
      withRealmStatus(steady(), { name: "ldap", pendingSync: "RealmCreated", syncState: "Syncing" }),
      syncTask,
      { upid: syncTask.upid, state: "running" },
    );
    expectPlan(w, { action: null, ready: false, reconciling: true, reason: "SyncRealmRunning" });
  });

  it("a periodic sync running keeps the pair Ready", () => {
    const w = withTask(
      withRealmStatus(steady(), { ...synced(), pendingSync: "Interval", syncState: "Syncing" }),
      syncTask,
      { upid: syncTask.upid, state: "running" },
    );
    expectPlan(w, { action: null, ready: true, reconciling: false, requeueMs: 1_000 });
  });

  it("never names the SQL password, whatever the row (checked by run for every plan)", () => {
    expect(JSON.stringify(run(steady()))).not.toContain(SQL_PASSWORD);
  });

  it("the first sync runs with ldap2 still failing, once ldap1 is verified", () => {
    const w = withServer(withRealmStatus(steady(), { name: "ldap", pendingSync: "RealmCreated" }), "ldap2", {
      containers: [{ ...container(steady(), "ldap2"), probe: FAILING_PROBE, uptimeSeconds: 10 }],
    });
    expect(run(w).action).toMatchObject({ kind: "SyncRealm" });
  });
});
