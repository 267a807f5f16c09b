// The parts of the state machine beside the servers (rows M, Q, Y and G of
// the table in plan.ts): the realm, the nodes' DNS, realm syncs, and parts
// that could not be read. Each returns a Decision; plan.ts weighs them with
// the servers'. Pure.
import type { SyncReason } from "../api/ldappair.js";
import { durationMs } from "../api/duration.js";
import { desiredNodeDns, nodeDnsUpdate, realmCreateParams, realmUpdate } from "../proxmox/normalize.js";
import { isRestartVolume } from "../proxmox/oci.js";
import { realmManagerOf, realmMarker, realmOrigin } from "./desired.js";
import { SYNC_NOW_ANNOTATION } from "./model.js";
import type { Ctx, Decision } from "./plan-context.js";
import { act, backoffWait } from "./plan-steps.js";

/**
 * Parts that could not be read (a realm behind a missing privilege, a node
 * whose DNS failed): the rest goes on, and the reason is shown: Stalled when
 * only a person can fix it (a 403 names the privilege and path).
 */
export function readProblemDecisions(ctx: Ctx): Decision[] {
  return (ctx.input.observed.readProblems ?? []).map((p): Decision => {
    const why = { reason: p.reason, message: p.message };
    return p.transient
      ? { kind: "wait", why: `waiting: ${p.message}`, progress: why, retryMs: ctx.t.problemRetryMs }
      : { kind: "blocked", why: `blocked: ${p.message}`, stalled: why };
  });
}

export function realmDecision(ctx: Ctx): Decision {
  const want = ctx.desired.realm;
  const { meta, observed } = ctx.input;
  if (!want) return { kind: "done" };
  const seen = observed.realm;
  if (!seen)
    return {
      kind: "wait",
      why: `waiting: the realm ${want.name} was not read`,
      progress: { reason: "RealmUnread", message: `the realm ${want.name} was not read` },
      retryMs: ctx.t.problemRetryMs,
    };
  if (!seen.config) {
    const params = realmCreateParams(want.name, { ...want.settings, comment: realmMarker(meta, "created") });
    return act(ctx, undefined, {
      action: { kind: "CreateRealm", name: want.name, params },
      because: `there is no realm ${want.name}`,
      reason: "CreatingRealm",
      effect: (draft) => (draft.realm = { ...draft.realm, name: want.name, pendingSync: "RealmCreated" }),
    });
  }
  const manager = seen.managedBy ?? realmManagerOf(seen.config["comment"]);
  if (manager !== undefined && manager !== meta.uid.toLowerCase()) {
    const why = {
      reason: "RealmConflict",
      message: `the realm ${want.name} is managed by another LdapPair (uid ${manager}): it is left alone; choose another spec.realm.name`,
    };
    return { kind: "blocked", why: `blocked: ${why.message}`, stalled: why, conflict: why };
  }
  if (manager === undefined && !ctx.input.spec.realm.adopt) {
    const why = {
      reason: "RealmConflict",
      message: `a realm ${want.name} exists that no LdapPair manages: it is left alone; set spec.realm.adopt: true to take it over, or choose another spec.realm.name`,
    };
    return { kind: "blocked", why: `blocked: ${why.message}`, stalled: why, conflict: why };
  }
  const origin = manager === undefined ? "adopted" : realmOrigin(seen.config["comment"]);
  const update = realmUpdate({ ...want.settings, comment: realmMarker(meta, origin) }, seen.config);
  if (!update) return { kind: "done" };
  const keys = [...Object.keys(update.set), ...update.delete].join(", ");
  return act(ctx, undefined, {
    action: {
      kind: "UpdateRealm",
      name: want.name,
      set: update.set,
      delete: update.delete,
      ...(seen.digest ? { digest: seen.digest } : {}),
    },
    because:
      manager === undefined
        ? `spec.realm.adopt takes over the realm ${want.name}`
        : `${keys} of the realm differ from the spec`,
    reason: manager === undefined ? "AdoptingRealm" : "UpdatingRealm",
    effect: (draft) => (draft.realm = { ...draft.realm, name: want.name, pendingSync: "RealmUpdated" }),
  });
}

export function dnsDecision(ctx: Ctx): Decision {
  const want = ctx.desired.nodeDns;
  if (!want) return { kind: "done" };
  for (const node of want.nodes) {
    const current = ctx.input.observed.nodeDns[node];
    if (!current)
      return {
        kind: "wait",
        why: `waiting: the DNS of node ${node} was not read`,
        progress: { reason: "NodeDnsUnread", message: `the DNS of node ${node} was not read` },
        retryMs: ctx.t.problemRetryMs,
      };
    const target = desiredNodeDns(current, { nameserver: want.nameserver, search: want.search });
    const update = nodeDnsUpdate(target, current);
    if (!update) continue;
    const recorded = (ctx.draft.nodeDns ?? []).some((r) => r.node === node);
    if (!recorded)
      return {
        kind: "record",
        why: `next: record the DNS of node ${node} in status before changing it, so that deletion can restore it`,
        progress: { reason: "RecordingNodeDns", message: `recording the DNS of node ${node}` },
        effect: (draft) => (draft.nodeDns = [...(draft.nodeDns ?? []), { node, previous: { ...current } }]),
      };
    return act(ctx, undefined, {
      action: { kind: "SetNodeDns", node, dns: { ...update, search: update.search ?? want.search } },
      because: `node ${node} does not resolve through ${want.nameserver} with search ${want.search}`,
      reason: "SettingNodeDns",
    });
  }
  return { kind: "done" };
}

/** Why a sync is owed now, or undefined. */
function syncReason(ctx: Ctx): SyncReason | undefined {
  const realm = ctx.draft.realm ?? {};
  if (realm.pendingSync) return realm.pendingSync;
  if (!realm.lastSyncTime) return "NeverSynced";
  const request = ctx.input.meta.annotations[SYNC_NOW_ANNOTATION];
  if (request !== undefined && request !== realm.syncRequest) return "SyncRequested";
  const interval = durationMs(ctx.input.spec.realm.syncInterval);
  if (interval > 0 && ctx.now.getTime() >= new Date(realm.lastSyncTime).getTime() + interval)
    return "Interval";
  return undefined;
}

/** The realm exists and is this pair's: made by it, or adopted with realm.adopt. */
function realmIsOurs(ctx: Ctx): boolean {
  const seen = ctx.input.observed.realm;
  if (!seen?.config) return false;
  const manager = seen.managedBy ?? realmManagerOf(seen.config["comment"]);
  return manager === undefined ? ctx.input.spec.realm.adopt : manager === ctx.input.meta.uid.toLowerCase();
}

export function syncDecision(ctx: Ctx, servers: readonly Decision[]): Decision {
  const want = ctx.desired.realm;
  if (!want) return { kind: "done" };
  const reason = syncReason(ctx);
  if (!reason) return { kind: "done" };
  // Someone else's realm (row M2) is never synced, nor one that is not there yet.
  if (!realmIsOurs(ctx)) return { kind: "done" };
  const db = ctx.input.observed.database;
  const waitFor = (what: string, retryMs: number): Decision => ({
    kind: "wait",
    why: `waiting to sync the realm (${reason}): ${what}`,
    progress: { reason: "SyncWaiting", message: `a sync is owed (${reason}): ${what}` },
    retryMs,
  });
  if (!db?.ok)
    return waitFor(
      `the database preflight ${db ? `failed: ${db.problem ?? "unknown"}` : "has not run"}`,
      ctx.t.problemRetryMs,
    );
  if (!ctx.views.some((v) => v.verified)) return waitFor("no server is healthy yet", ctx.t.verifyPollMs);
  const starting = ctx.views.find((v) => v.running && !v.verified && v.passing);
  if (starting) return waitFor(`${starting.desired.name} is still being verified`, ctx.t.verifyPollMs);
  // One sync after the last server of a rollout, not one per server.
  // A rollout held by a failed health gate (blocked) is no reason to wait: both servers serve.
  const rolling = servers.find((d) => d.kind !== "blocked" && "rollout" in d && d.rollout === true);
  if (rolling && "server" in rolling)
    return waitFor(`the rollout has not finished (${rolling.server} next)`, ctx.t.verifyPollMs);
  const backoff = backoffWait(ctx, "SyncRealm", undefined);
  if (backoff) return backoff;
  return act(ctx, undefined, {
    action: { kind: "SyncRealm", name: want.name, node: want.syncNode },
    because: SYNC_BECAUSE[reason],
    reason: "SyncingRealm",
    effect: (draft) =>
      (draft.realm = { ...draft.realm, name: want.name, syncState: "Syncing", pendingSync: reason }),
  });
}

const SYNC_BECAUSE: Record<SyncReason, string> = {
  NeverSynced: "the realm has never been synced",
  RealmCreated: "the realm was created",
  RealmUpdated: "the realm's settings changed",
  ServerRebuilt: "a server was rebuilt",
  SyncRequested: `the annotation ${SYNC_NOW_ANNOTATION} asks for it`,
  Interval: "spec.realm.syncInterval has passed",
};

/**
 * Row O (upkeep): a volume a restart of a mutable tag pulled, once no server
 * is built from it any more. Each restart pulls a new one; without this they
 * would pile up on the node (and in status.images) until the pair is deleted.
 * Versioned volumes stay: other pairs may create from them, and a rollback
 * needs the previous one.
 */
export function imageDecision(ctx: Ctx, servers: readonly Decision[]): Decision {
  if (servers.some((d) => d.kind !== "done")) return { kind: "done" };
  const wanted = new Set(ctx.views.map((v) => v.desired.imageVolume));
  const stale = (ctx.draft.images ?? []).find(
    (i) =>
      isRestartVolume(i.volid) &&
      !wanted.has(i.volid) &&
      ctx.input.observed.images[i.node]?.includes(i.volid),
  );
  if (!stale) return { kind: "done" };
  return act(ctx, undefined, {
    action: {
      kind: "DeleteImage",
      node: stale.node,
      storage: stale.volid.split(":")[0]!,
      volid: stale.volid,
    },
    because: "a later restart replaced it and no server is built from it",
    reason: "RemovingOldImage",
  });
}
