// The planner's working state: the decisions the parts of the state machine
// (plan.ts) return, the context every rule reads, and the folding of an
// ended task into the status. Pure.
import type {
  LastFailure,
  LdapPairStatus,
  Phase,
  RolloutFailure,
  SyncReason,
  TaskAction,
} from "../api/ldappair.js";
import { conditionTime, findCondition } from "../runtime/conditions.js";
import { READY, type Why } from "./conditions.js";
import { isRestartVolume } from "../proxmox/oci.js";
import { rebasedServer } from "./desired.js";
import {
  PAUSED_ANNOTATION,
  type Action,
  type DesiredPair,
  type DesiredServer,
  type EventRecord,
  type PlanInput,
  type PlannedStatus,
  type PlanTimings,
} from "./model.js";
import { serverView, type ServerView } from "./servers.js";
import { membersMissing, parseSyncLog } from "./sync-log.js";

/** A change to the status that a decision brings, applied when it is the one chosen. */
export type Effect = (draft: Draft) => void;

export type Decision =
  /** Do this now. */
  | {
      kind: "act";
      action: Action;
      why: string;
      event: EventRecord;
      progress: Why;
      server?: string;
      step?: string;
      /** Part of a rollout: a restart or rebuild the spec asked for, and the steps that finish it. */
      rollout?: boolean;
      /** Takes a serving server down: chosen only when no other part has something to do. */
      destructive?: boolean;
      /** The phase this decision puts the pair in, whatever else holds (Degraded after a failed health gate). */
      phase?: Phase;
      effect?: Effect;
    }
  /** Only a status write (record before acting), then look again at once. */
  | {
      kind: "record";
      why: string;
      progress: Why;
      effect: Effect;
      event?: EventRecord;
      server?: string;
      step?: string;
      rollout?: boolean;
      phase?: Phase;
    }
  /** Nothing can be done now; it may change by itself. */
  | {
      kind: "wait";
      why: string;
      progress: Why;
      retryMs: number;
      server?: string;
      step?: string;
      rollout?: boolean;
      stalled?: Why;
      phase?: Phase;
    }
  /** Nothing will change without a person. */
  | {
      kind: "blocked";
      why: string;
      stalled: Why;
      conflict?: Why;
      server?: string;
      step?: string;
      rollout?: boolean;
      phase?: Phase;
    }
  | { kind: "done" };

export interface Draft extends PlannedStatus {
  servers: NonNullable<LdapPairStatus["servers"]>;
}

export interface Ctx {
  input: PlanInput;
  now: Date;
  stamp: string;
  t: PlanTimings;
  desired: DesiredPair;
  views: ServerView[];
  /** The latest time any server went down. */
  lastDownAt?: Date;
  /** What the ended task brought: events, and the status it leaves. */
  events: EventRecord[];
  draft: Draft;
  /** Starts the plan saw succeed, by server. */
  started: Record<string, string>;
  /** What the chosen action does to a server's status, by server. */
  marks: Record<string, Marks>;
  /** A server's failed health gate that still holds the rollout (the spec still asks for what failed). */
  failure?: RolloutFailure;
  /** rollout.paused or the paused annotation: the rollout holds between steps. */
  paused: boolean;
}

/** A Warning for a problem only when it is new: a reconcile repeating it is no news. */
export function newProblemEvent(input: PlanInput, why: Why): EventRecord[] {
  const ready = findCondition(input.status.conditions, READY);
  if (ready?.reason === why.reason && ready.message === why.message) return [];
  return [{ type: "Warning", reason: why.reason, action: "Reconcile", note: why.message }];
}

export function context(
  input: PlanInput,
  t: PlanTimings,
  desired: DesiredPair,
  base = baseStatus(input),
): Ctx {
  const now = input.now;
  const before = input.status.servers ?? [];
  const failure = standingFailure(input.status.rollout?.failure, desired);
  const views = desired.servers.map((d) =>
    serverView(
      effectiveServer(d, failure),
      input.observed.servers.find((s) => s.name === d.name),
      before.find((s) => s.name === d.name),
      now,
      t.requiredPasses,
    ),
  );
  const draft: Draft = { ...base, servers: [...(input.status.servers ?? [])] };
  forgetRemovedImages(draft, input, desired);
  // A failure recorded for another target no longer holds anything: the spec moved on.
  if (draft.rollout?.failure && !failure) {
    const { failure: _gone, ...rest } = draft.rollout;
    draft.rollout = rest;
  }
  const ctx: Ctx = {
    input,
    now,
    stamp: conditionTime(now),
    t,
    desired,
    views,
    events: [],
    draft,
    started: {},
    marks: {},
    ...(failure ? { failure } : {}),
    paused: isPaused(input),
  };
  foldTask(ctx);
  ctx.lastDownAt = latest(ctx.views.map((v) => v.lastDownAt));
  return ctx;
}

/** A restart volume the pair pulled that its node no longer lists was removed: it is forgotten. */
function forgetRemovedImages(draft: Draft, input: PlanInput, desired: DesiredPair): void {
  if (input.meta.deleting || !draft.images) return;
  const wanted = new Set(desired.servers.map((d) => d.imageVolume));
  const gone = (i: { node: string; volid: string }) =>
    isRestartVolume(i.volid) &&
    !wanted.has(i.volid) &&
    input.observed.images[i.node]?.includes(i.volid) === false;
  if (draft.images.some(gone)) draft.images = draft.images.filter((i) => !gone(i));
}

/** The recorded failure, while the spec still asks that server for the configuration it failed on. */
function standingFailure(f: RolloutFailure | undefined, desired: DesiredPair): RolloutFailure | undefined {
  if (!f) return undefined;
  const server = desired.servers.find((d) => d.name === f.server);
  return server?.configHash === f.hash ? f : undefined;
}

/** What a server is driven towards: the spec's, or the previous image while a rebuild rolls it back. */
function effectiveServer(d: DesiredServer, f: RolloutFailure | undefined): DesiredServer {
  const rollback = f?.server === d.name ? f.rollback : undefined;
  if (rollback?.mode !== "Rebuild" || rollback.image === d.image) return d;
  return rebasedServer(d, rollback.image);
}

export function isPaused(input: PlanInput): boolean {
  const annotation = input.meta.annotations[PAUSED_ANNOTATION];
  return input.spec.rollout.paused || (annotation !== undefined && annotation !== "false");
}

/** The status the plan starts from: the previous one, without what the shell owns. */
export function baseStatus(input: PlanInput): PlannedStatus {
  const { conditions: _c, observedGeneration: _g, ...rest } = input.status;
  return { ...rest };
}

const SUCCEEDED: Record<TaskAction, string> = {
  PullImage: "ImagePulled",
  DeleteImage: "ImageDeleted",
  CreateContainer: "ContainerCreated",
  StartContainer: "ContainerStarted",
  StopContainer: "ContainerStopped",
  DeleteContainer: "ContainerDeleted",
  SyncRealm: "RealmSynced",
};
const FAILED: Record<TaskAction, string> = {
  PullImage: "ImagePullFailed",
  DeleteImage: "ImageDeleteFailed",
  CreateContainer: "CreateFailed",
  StartContainer: "StartFailed",
  StopContainer: "StopFailed",
  DeleteContainer: "DeleteFailed",
  SyncRealm: "SyncFailed",
};

/** An ended task goes into the status (and out of status.task); the rest of the plan sees its effect in Proxmox. */
function foldTask(ctx: Ctx): void {
  const task = ctx.input.status.task;
  const seen = ctx.input.observed.task;
  if (!task || !seen || seen.upid !== task.upid || seen.state === "running" || seen.state === "unknown")
    return;
  const { draft, stamp } = ctx;
  draft.task = undefined;
  const subject = task.server ? `${task.server}${task.vmid ? ` (CT ${task.vmid})` : ""}` : (task.node ?? "");
  if (seen.state === "ok") {
    if (sameFailure(draft.lastFailure, task.action, task.server)) draft.lastFailure = undefined;
    if (task.action === "SyncRealm") return foldSync(ctx, seen.log ?? [], task.syncRequest);
    if (task.action === "StartContainer" && task.server) ctx.started[task.server] = stamp;
    if (task.action === "CreateContainer" && draft.realm?.lastSyncTime)
      draft.realm = { ...draft.realm, pendingSync: draft.realm.pendingSync ?? "ServerRebuilt" };
    ctx.events.push({
      type: "Normal",
      reason: SUCCEEDED[task.action],
      action: task.action,
      note: `${task.action} ${subject} finished: ${seen.exitStatus}`,
    });
    return;
  }
  const attempts = sameFailure(draft.lastFailure, task.action, task.server)
    ? draft.lastFailure!.attempts + 1
    : 1;
  draft.lastFailure = {
    action: task.action,
    ...(task.server ? { server: task.server } : {}),
    reason: FAILED[task.action],
    time: stamp,
    attempts,
    message: `${task.action} ${subject} failed: ${seen.exitStatus}`,
  };
  if (task.action === "SyncRealm")
    draft.realm = {
      ...draft.realm,
      syncState: "Failed",
      message: `the last sync failed: ${seen.exitStatus}`,
    };
  ctx.events.push({
    type: "Warning",
    reason: FAILED[task.action],
    action: task.action,
    note: draft.lastFailure.message,
  });
}

function foldSync(ctx: Ctx, log: readonly string[], syncRequest: string | undefined): void {
  const { draft, stamp, input } = ctx;
  const counts = parseSyncLog(log);
  const missing = membersMissing(counts, input.spec.groupMembers);
  const previous = draft.realm ?? {};
  const { pendingSync: _done, membersMissing: _old, groupsWithoutMembers: _g, ...rest } = previous;
  draft.realm = {
    ...rest,
    name: ctx.desired.realm?.name ?? previous.name,
    syncState: "Synced",
    lastSyncTime: stamp,
    lastSyncTask: input.status.task!.upid,
    lastSyncReason: previous.pendingSync ?? "Interval",
    usersImported: counts.users,
    groupsImported: counts.groups,
    ...(counts.groupsWithoutMembers !== undefined
      ? { groupsWithoutMembers: counts.groupsWithoutMembers }
      : {}),
    ...(missing ? { membersMissing: missing } : {}),
    ...(syncRequest !== undefined ? { syncRequest } : {}),
    message: `synced ${counts.users} users and ${counts.groups} groups`,
  };
  ctx.events.push({
    type: "Normal",
    reason: "RealmSynced",
    action: "SyncRealm",
    note: `realm ${draft.realm.name} synced: ${counts.users} users, ${counts.groups} groups${missing ? `; ${missing}` : ""}`,
  });
}

export const sameFailure = (f: LastFailure | undefined, action: string, server: string | undefined) =>
  f !== undefined && f.action === action && f.server === server;

export interface Marks {
  wentDown?: boolean;
  envKeys?: string[];
}

/** Reasons after which the pair is not Ready until the sync succeeded. */
export const REQUIRED_SYNCS: ReadonlySet<SyncReason> = new Set([
  "NeverSynced",
  "RealmCreated",
  "RealmUpdated",
  "ServerRebuilt",
]);

export const seconds = (ms: number) => `${Math.max(0, Math.round(ms / 1000))}s`;
export const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export function latest(times: readonly (string | undefined)[]): Date | undefined {
  const ms = times.filter((t): t is string => t !== undefined).map((t) => new Date(t).getTime());
  return ms.length ? new Date(Math.max(...ms)) : undefined;
}
