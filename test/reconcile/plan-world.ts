// A pair's world for the planner's tables: the spec, what Proxmox and the
// probes show, and the status a previous plan left, all "as it should be"
// unless a row says otherwise. `run` plans and checks the invariants every
// plan must keep, whatever the row: kstatus's rules, a status the API server
// stores unchanged, no secret anywhere, searchable reasons, one line of
// explanation, and no server taken down while its peer is not healthy.
import { expect } from "vitest";
import type { LdapPairSpec, LdapPairStatus, ServerStatus } from "../../src/api/ldappair.js";
import { statusErrors } from "../../src/api/validate.js";
import { realmCreateParams } from "../../src/proxmox/normalize.js";
import { kstatusViolations } from "../../src/reconcile/conditions.js";
import { desiredPair, realmMarker } from "../../src/reconcile/desired.js";
import type {
  DesiredPair,
  Observation,
  ObservedContainer,
  ObservedServer,
  PairMeta,
  Plan,
  PlanInput,
} from "../../src/reconcile/model.js";
import { plan } from "../../src/reconcile/plan.js";
import { CONDITION_REASON_PATTERN, conditionTime, setConditions } from "../../src/runtime/conditions.js";
import { secretsWithUri } from "../support/secrets.js";
import { specWith } from "../support/spec.js";
import { DATABASE_OK, META, SQL_PASSWORD, SQL_URI, UID, runningContainer } from "./fixtures.js";

export const NOW = new Date("2026-12-01T12:00:00Z");
export const at = (secondsFromNow: number) => conditionTime(new Date(NOW.getTime() + secondsFromNow * 1000));
export const ago = (seconds: number) => at(-seconds);

export interface World {
  spec: LdapPairSpec;
  meta: PairMeta;
  status: LdapPairStatus;
  observed: Observation;
  desired?: DesiredPair;
  now?: Date;
}

export function desiredOf(spec: LdapPairSpec, uri = SQL_URI): DesiredPair {
  const result = desiredPair(spec, META, secretsWithUri(uri));
  if (!result.ok) throw new Error(result.problem.message);
  return result.pair;
}

/** The realm as Proxmox stores it after the operator created it. */
export function realmAsCreated(desired: DesiredPair, origin: "created" | "adopted" = "created") {
  const {
    realm: _realm,
    type: _type,
    ...config
  } = realmCreateParams(desired.realm!.name, {
    ...desired.realm!.settings,
    comment: realmMarker(META, origin),
  });
  return { config: { ...config, type: "ldap" }, digest: "realm-digest-1", managedBy: UID };
}

const vmidOf = (name: string) => (name === "ldap1" ? 101 : 102);

function steadyObservation(desired: DesiredPair): Observation {
  const servers: ObservedServer[] = desired.servers.map((d) => ({
    name: d.name,
    containers: [runningContainer(d, vmidOf(d.name))],
    foreign: [],
  }));
  const images: Record<string, string[]> = {};
  for (const d of desired.servers) images[d.node] = [...new Set([...(images[d.node] ?? []), d.imageVolume])];
  return {
    secrets: { ok: true },
    proxmox: { ok: true, release: "9.1" },
    servers,
    images,
    ...(desired.realm ? { realm: realmAsCreated(desired) } : {}),
    nodeDns: {},
    database: DATABASE_OK,
  };
}

/** Both servers running and verified, the realm synced ten minutes ago, the database fine. */
export function steadyWorld(overrides: Record<string, unknown> = {}, uri = SQL_URI): World {
  const spec = specWith(overrides);
  const desired = desiredOf(spec, uri);
  const observed = steadyObservation(desired);
  return { spec, meta: { ...META }, status: steadyStatus(spec, desired, observed), observed, desired };
}

/** The status a plan of the steady world leaves: so planning it again writes nothing. */
function steadyStatus(spec: LdapPairSpec, desired: DesiredPair, observed: Observation): LdapPairStatus {
  const entries: ServerStatus[] = desired.servers.map((d) => {
    const c = observed.servers.find((s) => s.name === d.name)!.containers[0]!;
    return {
      name: d.name,
      node: d.node,
      vmid: c.vmid,
      address: c.address!,
      image: d.image,
      configHash: d.configHash,
      buildHash: d.buildHash,
      state: "Running",
      healthy: true,
      passes: 2,
      healthySince: ago(3600),
      lastProbeTime: ago(3600),
    };
  });
  const status: LdapPairStatus = {
    observedGeneration: 1,
    phase: "Ready",
    readyServers: "2/2",
    servers: entries,
    realm: desired.realm
      ? {
          name: desired.realm.name,
          syncState: "Synced",
          lastSyncTime: ago(600),
          lastSyncTask: "UPID:pve1:00000001:00000001:00000001:auth-realm-sync:ldap:root@pam!op:",
          lastSyncReason: "RealmCreated",
          usersImported: 3,
          groupsImported: 3,
          message: "synced 3 users and 3 groups",
        }
      : { name: spec.realm.name, syncState: "Unmanaged" },
    database: { reachable: true, lastCheckTime: ago(3600), users: 3 },
  };
  // The conditions a steady plan sets, as if set an hour ago.
  const hourAgo = new Date(NOW.getTime() - 3600_000);
  const first = plan({ now: hourAgo, meta: META, spec, status, observed, desired });
  status.conditions = setConditions([], first.conditions, 1, hourAgo);
  return status;
}

export function inputOf(w: World): PlanInput {
  return {
    now: w.now ?? NOW,
    meta: w.meta,
    spec: w.spec,
    status: w.status,
    observed: w.observed,
    ...(w.desired ? { desired: w.desired } : {}),
  };
}

/** Replace one server's observation. */
export function withServer(w: World, name: string, change: Partial<ObservedServer>): World {
  return {
    ...w,
    observed: {
      ...w.observed,
      servers: w.observed.servers.map((s) => (s.name === name ? { ...s, ...change } : s)),
    },
  };
}

/** Replace one server's container (undefined: no container). */
export function withContainer(w: World, name: string, c: ObservedContainer | undefined): World {
  return withServer(w, name, { containers: c ? [c] : [] });
}

export function withStatusServer(w: World, name: string, change: Partial<ServerStatus>): World {
  return {
    ...w,
    status: {
      ...w.status,
      servers: (w.status.servers ?? []).map((s) => (s.name === name ? { ...s, ...change } : s)),
    },
  };
}

export function container(w: World, name: string): ObservedContainer {
  return w.observed.servers.find((s) => s.name === name)!.containers[0]!;
}

export function desiredServer(w: World, name: string) {
  return w.desired!.servers.find((s) => s.name === name)!;
}

/** Plans, and checks what every plan must keep. */
export function run(w: World): Plan {
  const input = inputOf(w);
  const p = plan(input);
  checkInvariants(input, p);
  return p;
}

export function checkInvariants(input: PlanInput, p: Plan): void {
  const conditions = setConditions(
    input.status.conditions ?? [],
    p.conditions,
    input.meta.generation,
    input.now,
  );
  expect(kstatusViolations(conditions, input.meta.generation), "kstatus invariants").toEqual([]);
  const written = JSON.parse(
    JSON.stringify({ ...p.status, conditions, observedGeneration: input.meta.generation }),
  );
  expect(statusErrors(written), "a status the API server stores unchanged").toEqual([]);
  const everything = JSON.stringify({
    status: p.status,
    conditions: p.conditions,
    events: p.events,
    explanation: p.explanation,
  });
  expect(everything, "no secret in status, conditions, events or explanation").not.toContain(SQL_PASSWORD);
  if (p.action && p.action.kind !== "ConfigureEnv" && p.action.kind !== "CreateContainer")
    expect(JSON.stringify(p.action), "no secret in the action").not.toContain(SQL_PASSWORD);
  const reason = new RegExp(CONDITION_REASON_PATTERN);
  for (const e of p.events) {
    expect(e.reason, "a searchable event reason").toMatch(/^[A-Z][A-Za-z0-9]+$/);
    expect(e.note.length).toBeGreaterThan(0);
  }
  for (const c of p.conditions) expect(c.reason).toMatch(reason);
  expect(p.explanation).not.toMatch(/\n/);
  expect(p.explanation.length).toBeGreaterThan(0);
  expect(p.requeueAfterMs).toBeGreaterThan(0);
  expect(Number.isFinite(p.requeueAfterMs)).toBe(true);
  if (p.action?.kind === "StopContainer" && !input.meta.deleting)
    expectPeerServing(input, p.action.server, p.action.vmid);
}

/** A stop outside deletion: the other server must run and pass its probe (or the stopped one is an extra). */
function expectPeerServing(input: PlanInput, server: string, vmid: number): void {
  const own = input.observed.servers.find((s) => s.name === server)!;
  const extraOfServing =
    own.containers.length > 1 && own.containers.some((c) => c.vmid !== vmid && c.probe?.healthy);
  if (extraOfServing) return;
  const peer = input.observed.servers.find((s) => s.name !== server)!;
  expect(
    peer.containers.some((c) => c.status === "running" && c.probe?.healthy),
    `the peer of ${server} serves while it is stopped`,
  ).toBe(true);
}

export { UID };

export interface Expectation {
  /** The action (a partial match), or null for none. */
  action?: Record<string, unknown> | null;
  ready?: boolean;
  /** Reconciling True. */
  reconciling?: boolean;
  /** Stalled True with this reason; false: Stalled False. */
  stalled?: string | false;
  /** Conflict True with this reason. */
  conflict?: string;
  /** Ready's reason (the one kubectl get -o wide shows). */
  reason?: string;
  phase?: string;
  /** Event reasons that must be among the events. */
  events?: string[];
  /** Nothing but these events. */
  onlyEvents?: string[];
  explanation?: RegExp;
  /** A message of a condition (any) matching this. */
  message?: RegExp;
  requeueMs?: number;
  status?: (status: Plan["status"]) => void;
}

const statusOfCondition = (p: Plan, type: string) => p.conditions.find((c) => c.type === type);

/** Plans the world and checks the row's expectations (and every invariant). */
export function expectPlan(w: World, e: Expectation): Plan {
  const p = run(w);
  if (e.action === null) expect(p.action, p.explanation).toBeUndefined();
  else if (e.action) expect(p.action, p.explanation).toMatchObject(e.action);
  const ready = statusOfCondition(p, "Ready")!;
  if (e.ready !== undefined)
    expect(ready.status, `Ready: ${ready.reason} ${ready.message}`).toBe(e.ready ? "True" : "False");
  if (e.reason) expect(ready.reason).toBe(e.reason);
  if (e.reconciling !== undefined)
    expect(statusOfCondition(p, "Reconciling")!.status).toBe(e.reconciling ? "True" : "False");
  if (e.stalled === false) expect(statusOfCondition(p, "Stalled")!.status).toBe("False");
  else if (e.stalled)
    expect(statusOfCondition(p, "Stalled")).toMatchObject({ status: "True", reason: e.stalled });
  if (e.conflict)
    expect(statusOfCondition(p, "Conflict")).toMatchObject({ status: "True", reason: e.conflict });
  if (e.phase) expect(p.status.phase).toBe(e.phase);
  if (e.events) expect(p.events.map((x) => x.reason)).toEqual(expect.arrayContaining(e.events));
  if (e.onlyEvents) expect(p.events.map((x) => x.reason)).toEqual(e.onlyEvents);
  if (e.explanation) expect(p.explanation).toMatch(e.explanation);
  if (e.message) expect(p.conditions.map((c) => c.message).join("\n")).toMatch(e.message);
  if (e.requeueMs !== undefined) expect(p.requeueAfterMs).toBe(e.requeueMs);
  e.status?.(p.status);
  return p;
}
