// The pure parts of the reconciler's shell, as tables: which Problem a failed
// call becomes, which inventory changes enqueue a pair, when the shared
// snapshot is fresh enough, how the inventory is sorted into our containers
// and foreign ones, the storage check, the Secrets reader's problems, what a
// reconcile writes for each outcome of act(), and the operator's new flags.
import { describe, expect, it } from "vitest";
import type { LdapPair } from "../../src/api/ldappair.js";
import type { SecretSource } from "../../src/api/secrets.js";
import { ConfigError, parseConfig } from "../../src/config.js";
import { readPairSecrets } from "../../src/kube/secrets.js";
import {
  proxmoxError,
  ProxmoxVersionError,
  type CallContext,
  type Failure,
} from "../../src/proxmox/errors.js";
import {
  InventoryPollError,
  type ContainerChange,
  type InventoryEvent,
} from "../../src/proxmox/inventory.js";
import { ProxmoxConfigError } from "../../src/proxmox/transport.js";
import type { ClusterResource } from "../../src/proxmox/types.js";
import type { ActOutcome } from "../../src/reconcile/act.js";
import { ClientPool } from "../../src/reconcile/clients.js";
import {
  configuredAddress,
  eth0Address,
  isOurServer,
  pendingValues,
  sortInventory,
  taggedHashes,
} from "../../src/reconcile/observe-containers.js";
import { imagesInUseElsewhere, imagesOf } from "../../src/reconcile/observe-elsewhere.js";
import { storageProblem } from "../../src/reconcile/observe.js";
import { proxmoxProblem } from "../../src/reconcile/problems.js";
import type { Plan, PlanInput } from "../../src/reconcile/model.js";
import { scaledTimings } from "../../src/reconcile/reconciler.js";
import { report } from "../../src/reconcile/report.js";
import { concerns, pollStart } from "../../src/reconcile/watch.js";
import { secretOf } from "../support/secrets.js";
import { specWith } from "../support/spec.js";

const UID = "5b1f0c3e-2a9d-4c61-9d0e-6f2b7a8c9d01";
const OTHER = "00000000-0000-0000-0000-000000000000";
const call: CallContext = {
  method: "GET",
  path: "/version",
  endpoint: "https://pve:8006",
  tokenId: "op@pve!t",
};
const response = (status: number, message: string): Failure => ({ type: "response", status, message });

describe("proxmoxProblem", () => {
  const cases: [string, unknown, { reason: string; transient: boolean; says?: RegExp }][] = [
    [
      "401",
      proxmoxError(call, response(401, "authentication failure")),
      { reason: "ProxmoxUnauthorized", transient: false },
    ],
    [
      "403 names the privilege and path",
      proxmoxError(
        { ...call, method: "POST", path: "/nodes/pve1/lxc" },
        response(403, "Permission check failed (/vms/100, VM.Allocate)"),
      ),
      { reason: "ProxmoxForbidden", transient: false, says: /VM\.Allocate on \/vms\/100/ },
    ],
    [
      "596",
      proxmoxError(call, response(596, "tls_process_server_certificate")),
      { reason: "ProxmoxNodeUnreachable", transient: true },
    ],
    [
      "refused connection",
      proxmoxError(call, { type: "network", sent: false, code: "ECONNREFUSED" }),
      { reason: "ProxmoxUnreachable", transient: true },
    ],
    [
      "untrusted certificate",
      proxmoxError(call, { type: "network", sent: false, code: "SELF_SIGNED_CERT_IN_CHAIN" }),
      { reason: "ProxmoxCertificateUntrusted", transient: false },
    ],
    [
      "unknown node",
      proxmoxError(call, response(500, "no such cluster node 'pve9'")),
      { reason: "NodeNotFound", transient: false, says: /pve9/ },
    ],
    [
      "unknown storage",
      proxmoxError(call, response(500, "storage 'nope' does not exist")),
      { reason: "StorageNotFound", transient: false },
    ],
    [
      "a lock",
      proxmoxError(call, response(500, "CT is locked (create)")),
      { reason: "ProxmoxLocked", transient: true },
    ],
    [
      "another 5xx",
      proxmoxError(call, response(500, "something broke")),
      { reason: "ProxmoxServerError", transient: true },
    ],
    [
      "an old Proxmox",
      new ProxmoxVersionError(
        { ...call, errorClass: "permanent", reason: "unsupported-version", message: "8.4 is older than 9.1" },
        "8.4",
      ),
      { reason: "ProxmoxVersionUnsupported", transient: false, says: /9\.1/ },
    ],
    [
      "a bad endpoint",
      new ProxmoxConfigError("Proxmox endpoint must be https://"),
      { reason: "ProxmoxConfigInvalid", transient: false },
    ],
    [
      "a failed inventory poll",
      new InventoryPollError(
        { url: "https://pve:8006", tokenId: "op@pve!t" },
        2,
        0,
        false,
        proxmoxError(call, { type: "network", sent: false, code: "EHOSTUNREACH" }),
      ),
      { reason: "ProxmoxUnreachable", transient: true, says: /inventory poll .* \(2 in a row\)/ },
    ],
    ["anything else", new Error("boom"), { reason: "ProxmoxError", transient: true, says: /boom/ }],
  ];
  it.each(cases)("%s", (_name, err, want) => {
    const p = proxmoxProblem(err);
    expect({ reason: p.reason, transient: p.transient }).toEqual({
      reason: want.reason,
      transient: want.transient,
    });
    if (want.says) expect(p.message).toMatch(want.says);
  });
});

const entry = (
  vmid: number,
  name: string,
  tags?: string,
  extra: Partial<ClusterResource> = {},
): ClusterResource => ({
  id: `lxc/${vmid}`,
  type: "lxc",
  vmid,
  name,
  node: "pve1",
  status: "running",
  ...(tags !== undefined ? { tags } : {}),
  ...extra,
});
const ourTags = (server: string, extra = "") =>
  `ldappair-config-0123456789abcdef;ldappair-owner-${UID};ldappair-server-${server}${extra}`;

describe("which inventory events enqueue a pair", () => {
  const interest = { uid: UID, servers: ["ldap1", "ldap2"] };
  const snapshot = (
    changes: ContainerChange[],
    o: { first?: boolean; recovered?: boolean } = {},
  ): InventoryEvent => ({
    type: "snapshot",
    snapshot: { takenAt: 0, containers: new Map() },
    changes,
    first: o.first ?? false,
    recovered: o.recovered ?? false,
  });
  const error = (failures: number): InventoryEvent => ({
    type: "error",
    error: new InventoryPollError({ url: "u", tokenId: "t" }, failures, 0, false, new Error("x")),
    snapshot: undefined,
  });
  const cases: [string, InventoryEvent, boolean][] = [
    [
      "one of ours stopped",
      snapshot([
        {
          kind: "changed",
          vmid: 1,
          fields: ["status"],
          before: entry(1, "x", ourTags("ldap1")),
          after: entry(1, "x", ourTags("ldap1"), { status: "stopped" }),
        },
      ]),
      true,
    ],
    [
      "a foreign container took a server's hostname",
      snapshot([{ kind: "added", vmid: 2, after: entry(2, "ldap2") }]),
      true,
    ],
    [
      "one of ours vanished",
      snapshot([{ kind: "removed", vmid: 3, before: entry(3, "ldap1", ourTags("ldap1")) }]),
      true,
    ],
    [
      "our tags were removed by hand",
      snapshot([
        {
          kind: "changed",
          vmid: 4,
          fields: ["tags"],
          before: entry(4, "y", ourTags("ldap1")),
          after: entry(4, "y", ""),
        },
      ]),
      true,
    ],
    [
      "another pair's container changed",
      snapshot([{ kind: "added", vmid: 5, after: entry(5, "web", `ldappair-owner-${OTHER}`) }]),
      false,
    ],
    [
      "the first poll (the subscriber waits for it)",
      snapshot([{ kind: "added", vmid: 1, after: entry(1, "ldap1", ourTags("ldap1")) }], { first: true }),
      false,
    ],
    ["the first good poll after failures", snapshot([], { recovered: true }), true],
    ["the first failed poll", error(1), true],
    ["the same failure again", error(2), false],
  ];
  it.each(cases)("%s", (_name, event, want) => expect(concerns(event, interest)).toBe(want));
});

describe("pollStart: whether the shared snapshot began after a change", () => {
  const snap = { takenAt: 1_000, containers: new Map() };
  it.each([
    ["no poll timed", undefined, undefined],
    ["the timed poll is the snapshot's", { start: 900, end: 1_000 }, 900],
    ["a later poll ended, the snapshot is not its", { start: 1_100, end: 1_200 }, undefined],
  ] as const)("%s", (_name, last, want) => expect(pollStart(snap, last)).toBe(want));
});

describe("sorting the inventory into our servers and foreign containers", () => {
  const inventory = new Map(
    [
      entry(100, "ldap1", ourTags("ldap1")),
      entry(101, "renamed", ourTags("ldap2")),
      entry(102, "ldap1"),
      entry(103, "ldap2", `ldappair-owner-${OTHER};ldappair-server-ldap2`),
      entry(104, "ldap1", `ldappair-owner-${UID};ldappair-owner-${OTHER};ldappair-server-ldap1`),
      entry(105, "web"),
      entry(106, "ldap1", ourTags("ldap1"), { type: "qemu" }),
    ].map((e) => [e.vmid, e]),
  );
  it("finds ours by owner and server tag, never by hostname; a twice-claimed one is nobody's", () => {
    const sorted = sortInventory(inventory, ["ldap1", "ldap2"], UID);
    expect(sorted.map((s) => [s.name, s.ours.map((e) => e.vmid), s.foreign.map((f) => f.vmid)])).toEqual([
      ["ldap1", [100], [102, 104]],
      ["ldap2", [101], [103]],
    ]);
  });
  it.each([
    [ourTags("ldap1"), "ldap1", true],
    [ourTags("LDAP1").toUpperCase(), "ldap1", true],
    [ourTags("ldap1"), "ldap2", false],
    [`ldappair-owner-${UID}`, "ldap1", false],
    [undefined, "ldap1", false],
  ])("isOurServer(%s, %s) is %s", (tags, server, want) => expect(isOurServer(tags, UID, server)).toBe(want));
  it.each([
    ["ldappair-config-aaaa;ldappair-build-bbbb", { configHash: "aaaa", buildHash: "bbbb" }],
    ["ldappair-config-aaaa", { configHash: "aaaa" }],
    ["ldappair-config-aaaa;ldappair-config-cccc;ldappair-build-bbbb", { buildHash: "bbbb" }],
    [undefined, {}],
  ])("taggedHashes(%s)", (tags, want) => expect(taggedHashes(tags)).toEqual(want));
  it.each([
    ["name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1", "10.0.0.5"],
    ["name=eth0,bridge=vmbr0,ip=dhcp", undefined],
    ["name=eth0,bridge=vmbr0", undefined],
  ])("configuredAddress(%s)", (net0, want) => expect(configuredAddress({ net0, digest: "d" })).toBe(want));
  it("reads eth0's address without the prefix and the pending values", () => {
    expect(
      eth0Address([
        { name: "lo", inet: "127.0.0.1/8" },
        { name: "eth0", inet: "10.0.0.5/24" },
      ]),
    ).toBe("10.0.0.5");
    expect(eth0Address([{ name: "eth0" }])).toBeUndefined();
    expect(
      pendingValues([
        { key: "memory", value: 512 },
        { key: "env", value: "A=1", pending: "A=2" },
        { key: "nameserver", value: "1.1.1.1", delete: 1 },
      ]),
    ).toEqual({ env: "A=2", nameserver: null });
  });
});

describe("storageProblem", () => {
  const want = { imageStorage: "local", rootStorage: "local-lvm" };
  const local = { storage: "local", content: "iso,vztmpl,backup" };
  const lvm = { storage: "local-lvm", content: "rootdir,images" };
  it.each([
    ["both fit", [local, lvm], undefined],
    ["no image storage", [lvm], "StorageNotFound"],
    ["no root storage", [local], "StorageNotFound"],
    ["image storage without vztmpl", [{ ...local, content: "iso,backup" }, lvm], "StorageContentMissing"],
    ["root storage without rootdir", [local, { ...lvm, content: "images" }], "StorageContentMissing"],
  ] as const)("%s", (_name, storages, reason) =>
    expect(storageProblem("pve1", storages, want)?.reason).toBe(reason),
  );
});

describe("readPairSecrets", () => {
  const spec = specWith({
    proxmox: {
      url: "https://pve.example.com:8006",
      node: "pve1",
      credentialsSecretRef: { name: "pve-token" },
      tls: { caSecretRef: { name: "pve-ca" } },
    },
  });
  const secrets: Record<string, SecretSource> = {
    "pve-token": secretOf({ tokenId: "op@pve!t", tokenSecret: "s3cr3t-token-value\n" }, "pve-token"),
    "pve-ca": secretOf(
      { "ca.crt": "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n" },
      "pve-ca",
    ),
    "manager-db": secretOf({ uri: "postgres://u:p4ssw0rd-long@db:5432/m" }, "manager-db"),
  };
  const reader =
    (present: Record<string, SecretSource>, reads: string[] = []) =>
    async (_ns: string, name: string) => {
      reads.push(name);
      return present[name];
    };

  it("reads each Secret once, trims the line end and registers the secret values, not the token id or CA", async () => {
    const registered: string[] = [];
    const reads: string[] = [];
    const r = await readPairSecrets(reader(secrets, reads), "ns", spec, (v) => registered.push(v));
    expect(r.ok && r.values.tokenSecret).toBe("s3cr3t-token-value");
    expect(reads.sort()).toEqual(["manager-db", "pve-ca", "pve-token"]);
    expect(registered).toEqual(
      expect.arrayContaining(["s3cr3t-token-value", "postgres://u:p4ssw0rd-long@db:5432/m"]),
    );
    expect(registered).toHaveLength(2);
    expect(registered).not.toContain("op@pve!t");
  });
  it.each([
    [
      "a missing Secret",
      { ...secrets, "manager-db": undefined },
      "SecretNotFound",
      /Secret ns\/manager-db \(the database URI/,
    ],
    [
      "a missing key",
      { ...secrets, "pve-token": secretOf({ tokenId: "op@pve!t" }, "pve-token") },
      "SecretKeyMissing",
      /no key "tokenSecret"/,
    ],
    [
      "an empty value",
      { ...secrets, "manager-db": secretOf({ uri: "\n" }, "manager-db") },
      "SecretValueInvalid",
      /is empty/,
    ],
  ])("%s", async (_name, present, reason, says) => {
    const r = await readPairSecrets(
      reader(present as Record<string, SecretSource>),
      "ns",
      spec,
      () => undefined,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problem.reason).toBe(reason);
    expect(r.problem.message).toMatch(says);
    expect(r.problem.message).not.toMatch(/s3cr3t|p4ssw0rd/);
  });
  it("says when the API server refuses the read", async () => {
    const forbidden = async () => Promise.reject(Object.assign(new Error("forbidden"), { code: 403 }));
    const r = await readPairSecrets(forbidden, "ns", spec, () => undefined);
    expect(!r.ok && r.problem).toMatchObject({ reason: "SecretForbidden", transient: false });
  });
});

describe("imagesOf: the volumes other pairs need", () => {
  it("holds each pair's recorded pulls and the volume its spec builds from", () => {
    const pairs = [
      {
        spec: specWith({ image: "ghcr.io/mieweb/ldap-gateway:1.5.0" }),
        status: { images: [{ node: "pve1", volid: "local:vztmpl/ldap-gateway_1.4.0.tar" }] },
      },
      { spec: specWith() },
    ] as unknown as LdapPair[];
    expect(imagesOf(pairs)).toEqual([
      "local:vztmpl/ldap-gateway_1.4.0.tar",
      "local:vztmpl/ldap-gateway_1.5.0.tar",
    ]);
  });
});

describe("imagesInUseElsewhere: only pairs on the same Proxmox cluster", () => {
  const pair = (uid: string, url: string, image: string) => ({
    metadata: { uid },
    spec: specWith({ image, proxmox: { ...specWith().proxmox, url } }),
  });
  const list = (items: unknown[]) => ({ list: async () => ({ items }) }) as never;
  it("counts another pair on the same origin, written another way, and not one on another cluster or itself", async () => {
    const items = [
      pair("self", "https://pve.example.com:8006", "ghcr.io/mieweb/ldap-gateway:1.0.0"),
      pair("same", "https://PVE.example.com:8006/api2/json", "ghcr.io/mieweb/ldap-gateway:1.5.0"),
      pair("other", "https://pve.other.example:8006", "ghcr.io/mieweb/ldap-gateway:1.6.0"),
    ];
    expect(await imagesInUseElsewhere(list(items), { uid: "self" }, "https://pve.example.com:8006")).toEqual([
      "local:vztmpl/ldap-gateway_1.5.0.tar",
    ]);
  });
  it("is unknown when the pairs cannot be listed, so nothing is removed", async () => {
    const failing = { list: async () => Promise.reject(new Error("forbidden")) } as never;
    expect(
      await imagesInUseElsewhere(failing, { uid: "self" }, "https://pve.example.com:8006"),
    ).toBeUndefined();
  });
});

describe("report: what a reconcile writes for each outcome of act()", () => {
  const input = {
    now: new Date("2026-01-01T00:00:00Z"),
    meta: {
      namespace: "ns",
      name: "a",
      uid: UID,
      generation: 1,
      deleting: false,
      hasFinalizer: true,
      annotations: {},
    },
    spec: specWith(),
    status: {},
    observed: {},
    timings: {},
  } as unknown as PlanInput;
  const plan: Plan = {
    action: {
      kind: "CreateContainer",
      server: "ldap1",
      node: "pve1",
      params: { ostemplate: "local:vztmpl/x.tar" },
    },
    status: { phase: "Provisioning", task: undefined },
    conditions: [{ type: "Reconciling", status: "True", reason: "Creating", message: "creating ldap1" }],
    events: [{ type: "Normal", reason: "Creating", action: "CreateContainer", note: "create ldap1" }],
    requeueAfterMs: 5_000,
    explanation: "next: create ldap1",
  };
  const timings = { taskPollMs: 100 };
  const run = (outcome: ActOutcome | undefined) => report(input, plan, outcome, timings);

  it("nothing done: the plan as it is", () => {
    expect(run(undefined)).toMatchObject({ fields: plan.status, events: plan.events, requeueAfterMs: 5_000 });
  });
  it("a task started: recorded in status with the vmid the create took, looked at again soon", () => {
    const r = run({ result: "started", upid: "UPID:pve1:1:2:3:vzcreate:104:op@pve!t:", vmid: 104 });
    expect(r.fields?.["task"]).toMatchObject({
      upid: "UPID:pve1:1:2:3:vzcreate:104:op@pve!t:",
      action: "CreateContainer",
      server: "ldap1",
      node: "pve1",
      vmid: 104,
    });
    expect(r.requeueAfterMs).toBe(100);
    expect(r.events).toEqual(plan.events);
  });
  it("skipped by a guard: nothing of the stale plan is written", () => {
    const r = run({ result: "skipped", reason: "status records task X" });
    expect(r.fields).toBeUndefined();
    expect(r.conditions).toEqual([]);
    expect(r.events).toEqual([expect.objectContaining({ type: "Normal", reason: "ActionSkipped" })]);
    expect(r.requeueAfterMs).toBe(100);
  });
  it("an unknown outcome: a Warning, and a look again soon", () => {
    const r = run({ result: "unknown", message: "no answer" });
    expect(r.events.at(-1)).toMatchObject({ type: "Warning", reason: "OutcomeUnknown" });
    expect(r.requeueAfterMs).toBe(100);
  });
  it("a failure: recorded for the backoff, with a Warning naming it", () => {
    const r = run({
      result: "failed",
      problem: { reason: "ProxmoxForbidden", message: "lacks VM.Allocate on /vms", transient: false },
    });
    expect(r.fields?.["lastFailure"]).toMatchObject({
      action: "CreateContainer",
      server: "ldap1",
      attempts: 1,
      reason: "ProxmoxForbidden",
    });
    expect(r.events.at(-1)).toMatchObject({ type: "Warning", reason: "ProxmoxForbidden" });
  });
});

describe("ClientPool: one client per endpoint, token and trust, closed when unused", () => {
  const settings = {
    endpoint: "https://pve.example.com:8006",
    tokenId: "op@pve!t",
    tokenSecret: "s3cr3t",
    insecure: false,
  };
  it("shares a client between pairs, keeps it while one uses it, and closes it with the last", () => {
    const pool = new ClientPool();
    const a = pool.acquire("ns/a", settings);
    expect(pool.acquire("ns/b", settings)).toBe(a);
    expect(pool.acquire("ns/a", settings)).toBe(a);
    pool.release("ns/a");
    expect(pool.size).toBe(1);
    pool.release("ns/b");
    expect(pool.size).toBe(0);
    expect(pool.acquire("ns/a", settings)).not.toBe(a);
    pool.close();
  });
  it("gives a rotated secret or a new CA its own client and drops the old one", () => {
    const pool = new ClientPool();
    const old = pool.acquire("ns/a", settings);
    const rotated = pool.acquire("ns/a", { ...settings, tokenSecret: "n3w-s3cr3t" });
    expect(rotated).not.toBe(old);
    expect(pool.size).toBe(1);
    expect(pool.acquire("ns/a", { ...settings, tokenSecret: "n3w-s3cr3t", ca: "PEM" })).not.toBe(rotated);
    expect(pool.size).toBe(1);
    pool.close();
  });
  it("refuses an endpoint the client cannot use, keeping the pair's previous client", () => {
    const pool = new ClientPool();
    const a = pool.acquire("ns/a", settings);
    expect(() => pool.acquire("ns/a", { ...settings, endpoint: "http://pve:8006" })).toThrow(
      ProxmoxConfigError,
    );
    expect(pool.acquire("ns/a", settings)).toBe(a);
    pool.close();
  });
});

describe("the reconciler's timings and flags", () => {
  it("scales every delay, keeps the counts, and keeps the stop timeout at a second at least", () => {
    const t = scaledTimings(0.05);
    expect(t).toMatchObject({
      taskPollMs: 50,
      resyncMs: 30_000,
      backoffBaseMs: 500,
      requiredPasses: 2,
      stallAfterAttempts: 3,
      stopTimeoutSeconds: 1,
    });
    expect(scaledTimings(1).taskPollMs).toBe(1_000);
  });
  it("has defaults for the inventory, the probe and the time scale", () => {
    const r = parseConfig([], {});
    if (r.help) throw new Error("help");
    expect(r.config).toMatchObject({
      inventoryIntervalMs: 10_000,
      inventoryBusyIntervalMs: 2_000,
      inventoryTimeoutMs: 30_000,
      proxmoxTimeoutMs: 20_000,
      probeTimeouts: { connect: 3_000, rootDse: 5_000, knownUser: 5_000, userCount: 15_000 },
      timeScale: 1,
    });
  });
  it("reads them from flags and the environment", () => {
    const r = parseConfig(["--inventory-interval=500ms", "--time-scale=0.05"], {
      PROBE_CONNECT_TIMEOUT: "1s",
    });
    if (r.help) throw new Error("help");
    expect(r.config).toMatchObject({
      inventoryIntervalMs: 500,
      timeScale: 0.05,
      probeTimeouts: { connect: 1_000 },
    });
  });
  it.each([
    "--time-scale=0",
    "--time-scale=2",
    "--time-scale=fast",
    "--inventory-interval=0",
    "--probe-listing-timeout=soon",
  ])("rejects %s", (flag) => expect(() => parseConfig([flag], {})).toThrow(ConfigError));
});
