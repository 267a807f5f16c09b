// How a plan ends: of the decisions the state machine (plan.ts) made, the
// one action, then the status, the conditions, the phase, the events, when to
// look again and the one-line explanation; and what the shell writes after
// act(). Pure.
import type { LastFailure, Phase, ServerState, TaskAction } from "../api/ldappair.js";
import { durationMs } from "../api/duration.js";
import { conditionTime, findCondition } from "../runtime/conditions.js";
import { DATABASE_REACHABLE, pairConditions, type Assessment, type Why } from "./conditions.js";
import {
  DEFAULT_TIMINGS,
  SYNC_NOW_ANNOTATION,
  describeAction,
  isTaskAction,
  type Action,
  type EventRecord,
  type Plan,
  type PlanInput,
  type PlannedStatus,
  type Problem,
} from "./model.js";
import {
  REQUIRED_SYNCS,
  newProblemEvent,
  sameFailure,
  seconds,
  type Ctx,
  type Decision,
} from "./plan-context.js";
import { serverStatus, type ServerView } from "./servers.js";

/** The plan from the decisions of every part: the first that acts wins, the others explain the wait. */
export function conclude(ctx: Ctx, decisions: Decision[], readinessOf: Decision[] = decisions): Plan {
  const chosen = choose(decisions);
  chosen?.effect?.(ctx.draft);
  const waits = decisions.filter((d): d is Extract<Decision, { kind: "wait" }> => d.kind === "wait");
  const blocks = decisions.filter((d): d is Extract<Decision, { kind: "blocked" }> => d.kind === "blocked");
  const stalled = blocks[0]?.stalled ?? waits.find((w) => w.stalled)?.stalled;
  const conflict = blocks.find((b) => b.conflict)?.conflict;
  const first = chosen ?? waits[0] ?? blocks[0];
  const status = assembleStatus(ctx, decisions, chosen);
  const ready = readiness(ctx, readinessOf);
  const assessment: Assessment = {
    ready,
    ...(first && "progress" in first ? { progressing: first.progress } : {}),
    ...(stalled ? { stalled } : {}),
    ...(conflict ? { conflict } : {}),
    ...databaseCondition(ctx),
    ...realmCondition(ctx, status),
  };
  const events = [...ctx.events, ...(chosen?.event ? [chosen.event] : []), ...databaseEvent(ctx, assessment)];
  if (stalled && !events.some((e) => e.reason === stalled.reason))
    events.push(...newProblemEvent(ctx.input, stalled));
  status.phase = phaseOf(ctx, decisions, status, {
    ready: ready !== undefined && !stalled,
    stalled: !!stalled,
  });
  return finish({
    ...(chosen?.kind === "act" ? { action: chosen.action } : {}),
    status,
    assessment,
    events,
    requeueAfterMs: requeue(ctx, chosen, waits),
    explanation: explanation(ctx, chosen, waits, blocks),
  });
}

type Chosen = Extract<Decision, { kind: "act" | "record" }>;

/**
 * A status-only record first (it must be written before what follows it),
 * then the first server action that takes no serving server down, then the
 * first action in order: every server's preflight (pulls, new containers,
 * pending env) comes before the first server goes down, while the realm, DNS
 * and syncs still come after the servers (a realm update that keeps failing
 * cannot hold a rollout up). At most one destructive action per plan.
 */
function choose(decisions: Decision[]): Chosen | undefined {
  const acts = decisions.filter((d): d is Extract<Decision, { kind: "act" }> => d.kind === "act");
  return (
    decisions.find((d): d is Extract<Decision, { kind: "record" }> => d.kind === "record") ??
    acts.find((a) => !a.destructive && a.server !== undefined) ??
    acts[0]
  );
}

function requeue(
  ctx: Ctx,
  chosen: Extract<Decision, { kind: "act" | "record" }> | undefined,
  waits: Extract<Decision, { kind: "wait" }>[],
): number {
  if (chosen?.kind === "record") return 1;
  if (chosen?.kind === "act") return isTaskAction(chosen.action) ? ctx.t.taskPollMs : 1;
  if (waits.length > 0) return Math.max(1, Math.min(...waits.map((w) => w.retryMs)));
  return untilNextSync(ctx) ?? ctx.t.resyncMs;
}

function untilNextSync(ctx: Ctx): number | undefined {
  const last = ctx.draft.realm?.lastSyncTime;
  if (!ctx.desired.realm || !last) return undefined;
  const interval = durationMs(ctx.input.spec.realm.syncInterval);
  if (interval <= 0) return undefined;
  return Math.max(1, Math.min(ctx.t.resyncMs, new Date(last).getTime() + interval - ctx.now.getTime()));
}

function explanation(
  ctx: Ctx,
  chosen: Extract<Decision, { kind: "act" | "record" }> | undefined,
  waits: Extract<Decision, { kind: "wait" }>[],
  blocks: Extract<Decision, { kind: "blocked" }>[],
): string {
  const also = blocks.length > 0 && chosen ? `; meanwhile ${blocks.map((b) => b.why).join("; ")}` : "";
  if (chosen) return chosen.why + also;
  if (waits.length > 0) return waits[0]!.why + (blocks.length ? `; ${blocks[0]!.why}` : "");
  if (blocks.length > 0) return blocks.map((b) => b.why).join("; ");
  const next = untilNextSync(ctx);
  return `in sync: both servers healthy, realm and DNS as the spec says; looking again in ${seconds(next ?? ctx.t.resyncMs)}`;
}

/** Ready when every part is done, no sync is owed that the pair depends on, and nothing needs a person. */
function readiness(ctx: Ctx, decisions: Decision[]): Why | undefined {
  const pending = ctx.draft.realm?.pendingSync;
  const allDone = decisions.every(
    (d) =>
      d.kind === "done" ||
      (d.kind === "act" && d.action.kind === "SyncRealm" && !REQUIRED_SYNCS.has(pending!)) ||
      (d.kind === "act" && d.action.kind === "DeleteImage"),
  );
  if (!allDone) return undefined;
  if (ctx.desired.realm && (ctx.draft.realm?.syncState === "Failed" || !ctx.draft.realm?.lastSyncTime))
    return undefined;
  return { reason: "Ready", message: readyMessage(ctx) };
}

function readyMessage(ctx: Ctx): string {
  const servers = ctx.views
    .map((v) => `${v.desired.name} (CT ${v.main?.vmid} on ${v.main?.node})`)
    .join(" and ");
  const realm = ctx.desired.realm ? `; realm ${ctx.desired.realm.name} synced` : "";
  return `${servers} serve ${ctx.input.spec.image}${realm}`;
}

function databaseCondition(ctx: Ctx): Pick<Assessment, "database"> {
  const db = ctx.input.observed.database;
  if (!db) return {};
  if (db.ok)
    return {
      database: {
        ok: true,
        reason: "PreflightPassed",
        message: `the gateways' four queries ran${db.userCount !== undefined ? ` (${db.userCount} users)` : ""}`,
      },
    };
  return {
    database: {
      ok: false,
      reason: databaseReason(db.connectError, db.reachable),
      message: `${db.problem ?? "the preflight failed"}; nothing is taken down while this lasts`,
    },
  };
}

/** A Warning when the preflight starts failing (or fails another way): not again while it stays the same. */
function databaseEvent(ctx: Ctx, a: Assessment): EventRecord[] {
  const db = a.database;
  if (!db || db.ok) return [];
  const before = findCondition(ctx.input.status.conditions, DATABASE_REACHABLE);
  if (before?.status === "False" && before.reason === db.reason) return [];
  return [{ type: "Warning", reason: db.reason, action: "Preflight", note: db.message }];
}

/** A searchable reason for what the preflight says (its words come from PostgreSQL and the preflight). */
export function databaseReason(connectError: string | undefined, reachable: boolean): string {
  if (reachable) return "DatabaseQueryFailed";
  const text = connectError ?? "";
  if (/is not a postgres:\/\/ or postgresql:\/\/ URI/.test(text)) return "DatabaseUriInvalid";
  if (/password authentication failed|no pg_hba\.conf entry|role .* does not exist/i.test(text))
    return "DatabaseAuthFailed";
  if (/database .* does not exist/i.test(text)) return "DatabaseNotFound";
  return "DatabaseUnreachable";
}

function realmCondition(ctx: Ctx, status: PlannedStatus): Pick<Assessment, "realm"> {
  const realm = status.realm;
  if (!ctx.desired.realm)
    return { realm: { status: "Unknown", reason: "RealmNotManaged", message: "spec.realm.manage is off" } };
  if (realm?.syncState === "Failed")
    return {
      realm: { status: "False", reason: "SyncFailed", message: realm.message ?? "the last sync failed" },
    };
  if (!realm?.lastSyncTime)
    return {
      realm: { status: "False", reason: "NeverSynced", message: "the realm has not been synced yet" },
    };
  const note = realm.membersMissing ? `; ${realm.membersMissing}` : "";
  return {
    realm: {
      status: "True",
      reason: "Synced",
      message: `${realm.message ?? "synced"} at ${realm.lastSyncTime}${note}`,
    },
  };
}

function phaseOf(
  ctx: Ctx,
  decisions: Decision[],
  status: PlannedStatus,
  o: { ready: boolean; stalled: boolean },
): Phase {
  // A failed health gate: the pair serves (the peer untouched), not as the spec asks.
  const forced = decisions.find((d) => "phase" in d && d.phase !== undefined);
  if (forced && "phase" in forced && forced.phase) return forced.phase;
  if (o.stalled) return "Stalled";
  if (o.ready) return "Ready";
  // A task of the rollout in flight, or the sync after its last server: still rolling.
  const rolling =
    decisions.some((d) => "rollout" in d && d.rollout === true) || status.rollout?.server !== undefined;
  if (decisions.some((d) => d.kind === "wait" && d.progress.reason === "RolloutPaused")) return "Paused";
  if (rolling) return "RollingUpdate";
  const everHealthy = ctx.views.some((v) => v.before?.healthySince !== undefined || v.verified);
  if (!everHealthy) return "Provisioning";
  if (ctx.views.some((v) => !v.verified)) return "Degraded";
  return "Provisioning";
}

function assembleStatus(ctx: Ctx, decisions: Decision[], chosen: Decision | undefined): PlannedStatus {
  const { draft, views } = ctx;
  const marks = ctx.marks;
  const taskOf = (server: string) => (draft.task?.server === server ? draft.task.action : undefined);
  draft.servers = views.map((v) => {
    const d = decisions[views.indexOf(v)];
    const mark = marks[v.desired.name];
    const view = mark?.wentDown ? { ...v, lastDownAt: ctx.now.toISOString() } : v;
    const started = ctx.started[v.desired.name];
    return serverStatus(view, stateOf(view, taskOf(v.desired.name), d), {
      now: ctx.now,
      ...imageOf(v),
      ...(d && d.kind !== "done" && "why" in d && d.kind !== "act" ? { message: d.why } : {}),
      ...(mark?.envKeys ? { envKeys: mark.envKeys } : {}),
      ...(started ? { startedAt: started } : {}),
    });
  });
  const ready = draft.servers.filter((s) => s.healthy).length;
  draft.readyServers = `${ready}/${views.length}`;
  draft.database = databaseStatus(ctx);
  if (!ctx.desired.realm) draft.realm = { name: ctx.input.spec.realm.name, syncState: "Unmanaged" };
  draft.rollout = rolloutStatus(ctx, decisions, chosen);
  return draft;
}

function imageOf(v: ServerView): { image?: string } {
  if (v.main && v.main.buildHash === v.desired.buildHash) return { image: v.desired.image };
  return v.main && v.before?.image ? { image: v.before.image } : {};
}

function stateOf(v: ServerView, task: TaskAction | undefined, d: Decision | undefined): ServerState {
  if (task === "CreateContainer") return "Creating";
  if (task === "StartContainer") return "Starting";
  if (task === "StopContainer") return "Stopping";
  if (task === "DeleteContainer") return "Removing";
  if (v.foreign.length > 0) return "Conflict";
  if (!v.main) return "Absent";
  if (v.main.lock === "create") return "Creating";
  if (!v.main.config && d?.kind === "wait") return "Unknown";
  if (!v.running) return "Stopped";
  return v.verified || v.before?.healthySince ? "Running" : "Starting";
}

function databaseStatus(ctx: Ctx): PlannedStatus["database"] {
  const db = ctx.input.observed.database;
  const before = ctx.input.status.database;
  if (!db) return before;
  const message = db.ok ? undefined : db.problem;
  const same =
    before && before.reachable === db.ok && before.message === message && before.users === db.userCount;
  return {
    reachable: db.ok,
    // Rewritten only when the outcome changes: a steady pair costs no status write.
    lastCheckTime: same && before.lastCheckTime ? before.lastCheckTime : ctx.stamp,
    ...(db.userCount !== undefined ? { users: db.userCount } : {}),
    ...(message ? { message } : {}),
  };
}

/**
 * The rollout's progress: which server, which step since when, from what to
 * what, and a failed health gate while it holds. The server is the first in
 * spec order with rollout work (so another server's preflight does not move
 * it); while a task runs the progress stays as it was.
 */
function rolloutStatus(
  ctx: Ctx,
  decisions: Decision[],
  chosen: Decision | undefined,
): PlannedStatus["rollout"] {
  const before = ctx.input.status.rollout;
  const failure = ctx.draft.rollout?.failure;
  const withFailure = (r: PlannedStatus["rollout"]) =>
    r || failure ? { ...r, ...(failure ? { failure } : {}) } : undefined;
  // The plan that started the task named its step; it lasts while the task runs.
  if (ctx.draft.task !== undefined && ctx.input.status.task) return withFailure(before);
  const lead = decisions.find(
    (d): d is Extract<Decision, { kind: "act" | "wait" | "blocked" | "record" }> =>
      d.kind !== "done" &&
      "rollout" in d &&
      d.rollout === true &&
      d.server !== undefined &&
      d.step !== undefined,
  );
  if (!lead) return withFailure(afterLastServer(ctx, before));
  const view = ctx.views.find((v) => v.desired.name === lead.server)!;
  const target = ctx.desired.servers.find((d) => d.name === lead.server)!;
  const same = before?.server === lead.server;
  // Another server's preflight acts while the lead waits for it.
  const step =
    chosen && chosen !== lead && chosen.kind === "act" && chosen.step === "Preflight"
      ? "Preflight"
      : lead.step!;
  const message =
    lead.kind === "wait" || lead.kind === "record"
      ? lead.progress.message
      : lead.kind === "blocked"
        ? lead.stalled.message
        : lead.why;
  return withFailure({
    server: lead.server,
    step,
    since: same && before?.step === step && before.since ? before.since : ctx.stamp,
    strategy: ctx.input.spec.rollout.strategy,
    targetImage: target.image,
    targetHash: target.configHash,
    ...(same && before?.previousImage
      ? { previousImage: before.previousImage }
      : view.before?.image
        ? { previousImage: view.before.image }
        : {}),
    ...(same && before?.previousHash
      ? { previousHash: before.previousHash }
      : view.before?.configHash
        ? { previousHash: view.before.configHash }
        : {}),
    updatedServers: updatedServers(ctx),
    message: step !== lead.step && chosen?.kind === "act" ? chosen.why : message,
  });
}

function updatedServers(ctx: Ctx): number {
  return ctx.views.filter(
    (v) =>
      v.main?.configHash === ctx.desired.servers.find((d) => d.name === v.desired.name)?.configHash &&
      v.verified,
  ).length;
}

/** After the last server: the realm sync the rebuild owes, then the rollout is over. */
function afterLastServer(ctx: Ctx, before: PlannedStatus["rollout"]): PlannedStatus["rollout"] {
  const owed = ctx.desired.realm && ctx.draft.realm?.pendingSync === "ServerRebuilt";
  if (!before?.server || !owed) return undefined;
  const { failure: _f, ...rest } = before;
  return {
    ...rest,
    step: "RealmSync",
    since: before.step === "RealmSync" && before.since ? before.since : ctx.stamp,
    updatedServers: updatedServers(ctx),
    message: "every server is rolled; the realm is synced, then the pair is Ready",
  };
}

export interface Finished {
  action?: Action;
  status: PlannedStatus;
  assessment: Assessment;
  events: EventRecord[];
  requeueAfterMs: number;
  explanation: string;
}

export function finish(f: Finished): Plan {
  return {
    ...(f.action ? { action: f.action } : {}),
    status: f.status,
    conditions: pairConditions(f.assessment),
    events: f.events,
    requeueAfterMs: f.requeueAfterMs,
    explanation: f.explanation,
  };
}

/** The status to write once act() started a task: the one task in flight, for the next reconcile to read. */
export function planTaskStarted(input: PlanInput, p: Plan, upid: string): PlannedStatus {
  const a = p.action;
  if (!a || !isTaskAction(a)) return p.status;
  const where =
    "server" in a
      ? { server: a.server, node: a.node, ...("vmid" in a ? { vmid: a.vmid } : {}) }
      : "node" in a
        ? { node: a.node }
        : {};
  const request = input.meta.annotations[SYNC_NOW_ANNOTATION];
  return {
    ...p.status,
    task: {
      upid,
      action: a.kind,
      ...where,
      startedAt: conditionTime(input.now),
      ...(a.kind === "SyncRealm" && request !== undefined ? { syncRequest: request } : {}),
    },
  };
}

/**
 * The plan once act() failed: the failure recorded for the backoff, a
 * Warning, and Stalled for a permanent problem (a 403 names the privilege
 * and path) or after repeated failures.
 */
export function planActionFailed(input: PlanInput, p: Plan, problem: Problem): Plan {
  const t = { ...DEFAULT_TIMINGS, ...input.timings };
  const a = p.action;
  if (!a) return p;
  const server = "server" in a ? a.server : undefined;
  const previous = p.status.lastFailure;
  const attempts = sameFailure(previous, a.kind, server) ? previous!.attempts + 1 : 1;
  const failure: LastFailure = {
    action: a.kind,
    ...(server ? { server } : {}),
    reason: problem.reason,
    time: conditionTime(input.now),
    attempts,
    message: `${describeAction(a)} failed: ${problem.message}`,
  };
  const why = { reason: problem.reason, message: failure.message };
  const stalled = !problem.transient || attempts >= t.stallAfterAttempts;
  const delay = Math.min(t.backoffMaxMs, t.backoffBaseMs * 2 ** (attempts - 1));
  return {
    status: { ...p.status, lastFailure: failure, ...(stalled ? { phase: "Stalled" as const } : {}) },
    conditions: pairConditions(
      stalled ? { ready: undefined, stalled: why } : { ready: undefined, progressing: why },
    ),
    events: [
      ...p.events.filter((e) => e.type === "Warning"),
      { type: "Warning", reason: problem.reason, action: a.kind, note: failure.message },
    ],
    requeueAfterMs: problem.transient ? delay : Math.max(delay, t.stalledRetryMs),
    explanation: `${failure.message}; retrying in ${seconds(problem.transient ? delay : Math.max(delay, t.stalledRetryMs))}`,
  };
}
