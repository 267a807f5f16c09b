// THE STATE MACHINE of an LdapPair: spec, status, what Proxmox and the probes
// show, and the time in; the one next action, the status, the conditions,
// the events and when to look again out. Pure: no I/O, no clock.
//
// One reconcile is one plan. Every part (each server, the realm, node DNS,
// syncs) decides; a status-only record goes first, then the first server
// action that takes no serving server down (so every preflight is done before
// a server goes down), then the first action in order; a part that waits lets
// the others act.
// Every state is re-derived from Proxmox on each reconcile (tags carry owner
// and hashes, so a swap's two containers are told apart); the status adds
// only what Proxmox cannot say: the task in flight, probe history, times, the
// rollout's previous image and a failed health gate, sync bookkeeping, the
// DNS to restore. Where they disagree, Proxmox wins. Kill the operator at any
// moment, and the next plan goes on from what Proxmox shows.
//
// | #  | state            | the observation that moves it                        | action (or wait)                                       |
// |----|------------------|------------------------------------------------------|--------------------------------------------------------|
// Deletion (plan-deletion.ts):
// | D0 | Deleting         | deletionTimestamp, our finalizer gone                | nothing                                                |
// | D1 | Deleting         | annotation ldapgateway.io/drop-finalizer             | RemoveFinalizer (Warning FinalizerDropped)             |
// | D2 | Deleting         | deletionPolicy Retain                                | RemoveFinalizer (Retained: what is left, named)        |
// | D3 | Deleting         | Secrets or Proxmox unusable                          | wait, the condition says why and how to drop it        |
// | D4 | Deleting         | status.task running or unreadable (T, T2)            | wait (or overrule a hanging shutdown)                  |
// | D5 | Deleting         | a container of ours: running / stopped / locked      | StopContainer / DeleteContainer (purge) / wait         |
// | D6 | Deleting         | a volume it pulled, listed, no other pair uses it    | DeleteImage                                            |
// | D7 | Deleting         | the realm it created (marker: created)               | DeleteRealm (an adopted one stays)                     |
// | D8 | Deleting         | recorded node DNS differs from the node's            | SetNodeDns(previous); equal: forget the record         |
// | D9 | Deleting         | nothing of ours left                                 | RemoveFinalizer (CleanedUp)                            |
// The pair:
// | F  | New              | no finalizer                                         | AddFinalizer, before any Proxmox call                  |
// | S  | SecretsBroken    | Secret/key missing, URI malformed, env refused       | none: Stalled                                          |
// | P  | ProxmoxBroken    | 401, 403, < 9.1, unknown node or storage (permanent) | none: Stalled                                          |
// |    |                  | unreachable, 5xx, node down; nothing observed (trans.)| wait: Reconciling, the rollout's progress kept as is   |
// | T  | TaskRunning      | status.task running, or its status unreadable        | wait (taskPollMs); the rollout's progress kept         |
// | T2 | ShutdownHangs    | our shutdown (vzshutdown) running past twice its     | StopContainer overrule (status/stop overrule-shutdown) |
// |    |                  | timeout; a hard stop (vzstop) is waited for          |                                                        |
// |    | TaskEnded        | ok / failed                                          | fold into status (event, lastFailure), then go on      |
// Each server, in spec order (ldap1 first):
// | C  | Conflict         | a container we do not own has the hostname           | none for this server: Conflict names vmid and node     |
// | K0 | GateFailed       | rollout.failure names it (the spec still asks for    | none: Stalled HealthGateFailed, phase Degraded, the    |
// |    |                  | what failed), no autoRollback                        | peer untouched and serving the previous version        |
// | K1 | RollbackBegins   | ... with autoRollback, no rollback recorded yet      | record it: Swap (a kept old container) or Rebuild      |
// |    |                  |                                                      | (the previous image); nothing to go back to: as K0     |
// | K2 | RollbackSwap     | a failed container runs / the kept one is stopped /  | gate -> StopContainer / StartContainer (one start) /   |
// |    |                  | verifying / verified, the failed one left            | wait / DeleteContainer(failed)                         |
// | K3 | RollbackRebuild  | rows R2..Z, V against the previous image             | as those rows (steps Rollback...)                      |
// | K4 | RolledBack       | the kept or rebuilt server verified                  | record RolledBack (Warning); then none: Stalled        |
// |    |                  |                                                      | RolledBack, phase Degraded, until the spec changes     |
// | K5 | RollbackFailed   | the rolled-back server fails past healthGateTimeout  | record it; then none: Stalled RollbackFailed           |
// | K6 | GateRecovered    | no rollback begun; the failed server verified now    | drop the record, go on                                 |
// | K7 | Halted           | another server's failure holds; this one needs a     | none: its old version keeps serving; once the failed   |
// |    |                  | rebuild or restart, has no container, or a new one   | one is rolled back, its unused new container (never    |
// |    |                  | made in the preflight                                | started) is deleted                                    |
// A swap (CreateThenSwap: two containers of ours, one built for the spec):
// | W0 | TwoRunning       | both run                                             | StopContainer of the one not verified (never gated)    |
// | W1 | SwapConfigure    | the new one stopped, its env not ours                | ConfigureEnv (Preflight while the old one serves)      |
// | W2 | SwapStop         | the new one configured, the old one running          | preflight + gate -> StopContainer(old)                 |
// | W3 | SwapStart        | both stopped                                         | StartContainer(new), never gated                       |
// | W4 | SwapVerify       | the new one running, within healthGateTimeout        | wait; the old one kept stopped (VF past it)            |
// | W5 | SwapCleanup      | the new one verified                                 | DeleteContainer(old)                                   |
// One container:
// | X  | Duplicate        | more containers of ours than one (or a swap)         | the extra: stopped -> Delete; running -> gate -> Stop  |
// | A  | AddressTaken     | no container; its static address is in use           | none: Conflict                                         |
// | I  | ImageMissing     | no container, or a rebuild due; image not on node    | PullImage (Preflight: once per node and tag)           |
// | N  | Absent           | no container                                         | CreateContainer (stopped, tagged; backoff)             |
// | L  | Locked           | a lock (create, ...) or the config unreadable        | wait                                                   |
// | R0 | SwapBegins       | build hash or node differs; CreateThenSwap           | CreateContainer beside the old one, stopped (Preflight)|
// | R1 | RebuildRunning   | build hash or node differs; RemoveThenCreate; running| preflight + gate -> StopContainer                      |
// | R2 | RebuildStopped   | build hash or node differs; stopped                  | DeleteContainer (then N)                               |
// | E1 | EnvStopped       | env not ours; stopped (fresh from create)            | ConfigureEnv                                           |
// | E2 | EnvRunning       | env not ours; running; ours not pending              | ConfigureEnv (Preflight: pending until the next start) |
// | E3 | RestartPending   | ours pending; running                                | preflight + gate -> StopContainer (then Z applies it)  |
// | U  | InPlace          | cores/memory/swap/onboot/description/tags differ     | UpdateInPlace (digest), never gated                    |
// | Z  | Stopped          | stopped, configured                                  | StartContainer (never gated; backoff)                  |
// | V  | Verifying        | running; not yet passing often enough, within        | wait (verifyPollMs)                                    |
// |    |                  | healthGateTimeout of its start or failure            |                                                        |
// | VF | GateFailing      | a server of the rollout fails past healthGateTimeout | record rollout.failure (Warning HealthGateFailed): K   |
// | H  | Failing          | not in a rollout: fails past healthGateTimeout       | gate -> StopContainer (a restart; backoff)             |
// | OK | Healthy          | passes in a row, in sync                             | none                                                   |
// The gates before a step that takes a server down (R1, E3, W2; X and H: PG only):
// | PO | Order            | a server before it (spec order) not yet rolled:      | wait: one server at a time, ldap1 first; an unhealthy  |
// |    |                  | needs a rebuild or restart, a swap, or not verified  | ldap2 never jumps the queue; Stalled at the deadline   |
// | PA | Paused           | rollout.paused, or annotation ldapgateway.io/paused  | wait, phase Paused; a server that is down is brought   |
// |    |                  |                                                      | back first; steps that begin a server wait too (I, R0, |
// |    |                  |                                                      | W1, E2); a rollback is never paused                    |
// | PF | Preflight        | a server's image not on its node, its new container  | wait: those parts act first; Stalled at                |
// |    |                  | (CreateThenSwap) not made and configured, or its env | progressDeadline                                       |
// |    |                  | (restart) not written                                |                                                        |
// | PG | PeerGate         | the peer not verified, the database preflight        | wait; Stalled at progressDeadline                      |
// |    |                  | failing, settleTime not passed since a server went   |                                                        |
// |    |                  | down                                                 |                                                        |
// The realm (plan-upkeep.ts, realm.manage):
// | M1 | RealmAbsent      | no realm of that name                                | CreateRealm (marker: created); a sync is owed          |
// | M2 | RealmForeign     | its marker names another pair; no marker, no adopt   | none: Conflict                                         |
// | M3 | RealmDrift       | a setting differs after normalisation                | UpdateRealm (what differs, digest); a sync is owed     |
// Node DNS (plan-upkeep.ts, nodeDns):
// | Q1 | DnsUnrecorded    | a node's DNS differs, its previous values unrecorded | record them in status first (no action, look again)    |
// | Q2 | DnsDrift         | a node's DNS differs, previous values recorded       | SetNodeDns                                             |
// Syncs (plan-upkeep.ts):
// | Y  | SyncDue          | owed (created, updated, rebuilt, never synced), the  | SyncRealm, once a server is verified, none is starting,|
// |    |                  | sync-now annotation changed, syncInterval passed     | no rollout is under way and the database passes; after |
// |    |                  |                                                      | the last server of a rollout: step RealmSync, then     |
// |    |                  |                                                      | Ready (backoff after a failure)                        |
// | O  | OldRestartImage  | every server in sync; a restart volume it pulled,    | DeleteImage (upkeep: Ready stays)                      |
// |    |                  | listed, that no server is built from                 | an unlisted one is forgotten                           |
// | G  | ReadFailed       | a part could not be read (Observation.readProblems)  | none for it: Stalled if permanent (a 403), else wait   |
// | OK | InSync           | nothing above                                        | none: look again at the next sync or the resync        |
//
// A gate or preflight wait longer than rollout.progressDeadline is Stalled; a
// failed action is Stalled after stallAfterAttempts tries (and still retried).
import type { RolloutFailure, TaskAction } from "../api/ldappair.js";
import { durationMs } from "../api/duration.js";
import { parseUpid } from "../proxmox/upid.js";
import type { Assessment, Why } from "./conditions.js";
import { rebasedServer } from "./desired.js";
import { peerGate, type GateVerdict } from "./gate.js";
import {
  DEFAULT_TIMINGS,
  PAUSED_ANNOTATION,
  type DesiredServer,
  type ObservedContainer,
  type Plan,
  type PlanInput,
  type PlanTimings,
  type Problem,
} from "./model.js";
import {
  REQUIRED_SYNCS,
  baseStatus,
  context,
  latest,
  newProblemEvent,
  seconds,
  type Ctx,
  type Decision,
} from "./plan-context.js";
import { planDeletion } from "./plan-deletion.js";
import { conclude, finish } from "./plan-report.js";
import {
  act,
  backoffWait,
  configureEnv,
  sinceOf,
  startContainer,
  stopAction,
  updateInPlace,
  wait,
} from "./plan-steps.js";
import {
  dnsDecision,
  imageDecision,
  readProblemDecisions,
  realmDecision,
  syncDecision,
} from "./plan-upkeep.js";
import type { ServerView, SwapPair } from "./servers.js";
import { classify, type TierVerdict } from "./tiers.js";

// What the shell writes after act(), and the reason a preflight result maps to.
export { databaseReason, planActionFailed, planTaskStarted } from "./plan-report.js";

// ---- the entry ----------------------------------------------------------------

export function plan(input: PlanInput): Plan {
  const t = { ...DEFAULT_TIMINGS, ...input.timings };
  if (input.meta.deleting) return planDeletion(input, t, taskDecision);
  if (!input.meta.hasFinalizer)
    return finish({
      action: { kind: "AddFinalizer" },
      status: { ...baseStatus(input), phase: "Pending" },
      assessment: {
        ready: undefined,
        progressing: {
          reason: "Initializing",
          message: "adding the finalizer before the first Proxmox call",
        },
      },
      events: [],
      requeueAfterMs: 1,
      explanation:
        "next: add the finalizer, so that nothing is created in Proxmox that deletion could not find again",
    });
  const problem = setupProblem(input);
  if (problem) return planProblem(input, t, problem);
  const ctx = context(input, t, input.desired!);
  const parts = () => {
    const servers = ctx.views.map((v) => serverDecision(ctx, v));
    return [
      ...servers,
      realmDecision(ctx),
      dnsDecision(ctx),
      syncDecision(ctx, servers),
      imageDecision(ctx, servers),
      ...readProblemDecisions(ctx),
    ];
  };
  const task = taskDecision(ctx);
  if (!task) return conclude(ctx, parts());
  // A periodic or requested sync in flight is upkeep: the pair stays Ready if every part is.
  return conclude(ctx, [task], isUpkeep(ctx) ? parts() : undefined);
}

function isUpkeep(ctx: Ctx): boolean {
  const realm = ctx.draft.realm;
  const action = ctx.input.status.task?.action;
  if (action === "DeleteImage") return true;
  return (
    action === "SyncRealm" &&
    realm?.lastSyncTime !== undefined &&
    !REQUIRED_SYNCS.has(realm.pendingSync ?? "Interval")
  );
}

/** Secrets and Proxmox, before anything else: without them nothing can be seen. */
function setupProblem(input: PlanInput): Problem | undefined {
  const { observed } = input;
  if (!observed.secrets.ok) return observed.secrets.problem;
  if (!input.desired)
    return {
      reason: "DesiredStateUnavailable",
      message: "the servers' configuration could not be rendered",
      transient: false,
    };
  if (!observed.proxmox.ok) return observed.proxmox.problem;
  return undefined;
}

function planProblem(input: PlanInput, t: PlanTimings, problem: Problem): Plan {
  const why: Why = { reason: problem.reason, message: problem.message };
  const assessment: Assessment = problem.transient
    ? { ready: undefined, progressing: why }
    : { ready: undefined, stalled: why };
  return finish({
    status: {
      ...baseStatus(input),
      phase: problem.transient ? (input.status.phase ?? "Pending") : "Stalled",
    },
    assessment,
    events: newProblemEvent(input, why),
    requeueAfterMs: problem.transient ? t.problemRetryMs : t.stalledRetryMs,
    explanation: problem.transient
      ? `waiting: ${problem.message}; looking again in ${seconds(t.problemRetryMs)}`
      : `stalled: ${problem.message}; nothing is done until it is fixed`,
  });
}

/** Rows T and T2: the one task in flight is waited for, and a shutdown never longer than its bound. */
function taskDecision(ctx: Ctx): Decision | undefined {
  const task = ctx.input.status.task;
  if (!task || ctx.draft.task === undefined) return undefined;
  const seen = ctx.input.observed.task;
  const what = `${task.action}${task.server ? ` of ${task.server}` : ""} (${task.upid})`;
  if (seen?.state === "unknown")
    return {
      kind: "wait",
      why: `waiting: the status of task ${what} cannot be read: ${seen.problem.message}`,
      progress: { reason: "TaskUnreadable", message: seen.problem.message },
      retryMs: ctx.t.problemRetryMs,
    };
  const rollout = ctx.input.status.rollout?.server === task.server;
  const hanging = hangingShutdown(ctx);
  if (hanging) return hanging;
  return {
    kind: "wait",
    why: `waiting for task ${what} to end; looking again in ${seconds(ctx.t.taskPollMs)}`,
    progress: { reason: `${task.action}Running`, message: `task ${what} is running` },
    retryMs: ctx.t.taskPollMs,
    ...(task.server ? { server: task.server, step: STEP_OF_TASK[task.action], rollout } : {}),
  };
}

/**
 * A gateway does not exit on SIGTERM while a client holds a connection, and
 * the shutdown's forced stop can itself wait (a lock, a slow node): past twice
 * its timeout, a hard stop with overrule-shutdown aborts it. The stop is then
 * bounded by the plan, never an open-ended wait.
 */
function hangingShutdown(ctx: Ctx): Decision | undefined {
  const task = ctx.input.status.task!;
  const { server, node, vmid } = task;
  if (ctx.input.observed.task?.state !== "running" || task.action !== "StopContainer") return undefined;
  // A hard stop (vzstop, the overrule itself) is bounded by Proxmox: overruling it would only stop a stopped container.
  if (!server || !node || vmid === undefined || parseUpid(task.upid)?.type !== "vzshutdown") return undefined;
  const ran = ctx.now.getTime() - new Date(task.startedAt).getTime();
  const bound = 2 * ctx.t.stopTimeoutSeconds * 1000;
  if (ran <= bound) return undefined;
  const view = ctx.views.find((v) => v.desired.name === server);
  return {
    ...act(ctx, view, {
      action: stopAction(ctx, server, { vmid, node, status: "running" }, true),
      because: `its shutdown ${task.upid} has run ${seconds(ran)}, past twice its ${ctx.t.stopTimeoutSeconds}s timeout`,
      reason: "OverrulingShutdown",
    }),
    ...(ctx.input.status.rollout?.server === server ? { rollout: true } : {}),
  };
}

const STEP_OF_TASK: Record<TaskAction, string> = {
  PullImage: "PullImage",
  DeleteImage: "RemoveImage",
  CreateContainer: "Create",
  StartContainer: "Start",
  StopContainer: "Stop",
  DeleteContainer: "Remove",
  SyncRealm: "Sync",
};

// ---- one server ----------------------------------------------------------------

function serverDecision(ctx: Ctx, view: ServerView): Decision {
  const decision = decideServer(ctx, view);
  if (decision.kind === "done" || ("rollout" in decision && decision.rollout !== undefined)) return decision;
  if (decision.kind !== "act" && decision.kind !== "wait") return decision;
  // A restart or rebuild the spec asks for is a rollout, and so is every step until that server is back.
  const tier = view.main?.config
    ? classify({ ...view.main, config: view.main.config }, view.desired, view.before?.envKeys).tier
    : undefined;
  const r = ctx.input.status.rollout;
  const continuing = r?.server === view.desired.name && r.step !== "RealmSync";
  const rolling = continuing || view.swap !== undefined || tier === "rebuild" || tier === "restart";
  return { ...decision, rollout: rolling };
}

function decideServer(ctx: Ctx, view: ServerView): Decision {
  if (view.foreign.length > 0) return foreignConflict(view);
  if (ctx.failure?.server === view.desired.name) return failedServer(ctx, view, ctx.failure);
  return driveServer(ctx, view);
}

/** Rows W to OK: the server driven towards view.desired (the spec's, or the previous image in a rollback). */
function driveServer(ctx: Ctx, view: ServerView): Decision {
  const d = view.desired;
  const name = d.name;
  const holder = ctx.failure && ctx.failure.server !== name ? ctx.failure : undefined;
  if (view.swap) return holder ? heldSwap(ctx, view, view.swap, holder) : swap(ctx, view, view.swap);
  if (view.extras.length > 0) return removeExtra(ctx, view, view.extras[0]!);
  const main = view.main;
  if (!main) {
    if (holder) return haltedPeer(ctx, view, holder);
    if (view.addressTaken) {
      const { address, vmid, node } = view.addressTaken;
      const why = {
        reason: "AddressInUse",
        message: `${name}'s static address ${address} is already used by CT ${vmid} on ${node}: nothing is created until it is free or spec.servers[].network changes`,
      };
      return { kind: "blocked", why: `blocked: ${why.message}`, stalled: why, conflict: why, server: name };
    }
    return pullImage(ctx, view, "PullImage") ?? createContainer(ctx, view, `${name} has no container`);
  }
  if (main.lock) return waitForLock(ctx, view, main);
  if (!main.config) return waitForConfig(ctx, view, main);
  const tier = classify({ ...main, config: main.config }, d, view.before?.envKeys);
  if (holder && (tier.tier === "rebuild" || tier.tier === "restart")) return haltedPeer(ctx, view, holder);
  if (tier.tier === "rebuild")
    return ctx.input.spec.rollout.strategy === "CreateThenSwap" && !rollingBack(ctx, name)
      ? beginSwap(ctx, view, main, tier)
      : rebuild(ctx, view, main, tier);
  if (tier.tier === "restart") return restart(ctx, view, main, tier);
  if (tier.tier === "inPlace") return updateInPlace(ctx, view, main, tier);
  if (!view.running) return startContainer(ctx, view, main);
  return verify(ctx, view, main);
}

function foreignConflict(view: ServerView): Decision {
  const list = view.foreign.map((f) => `CT ${f.vmid} on ${f.node}`).join(", ");
  const why = {
    reason: "ContainerConflict",
    message: `${list} has the hostname ${view.desired.name} but is not this LdapPair's (no owner tag of it): it is left alone, and ${view.desired.name} is not provisioned until it is renamed or removed`,
  };
  return {
    kind: "blocked",
    why: `blocked: ${why.message}`,
    stalled: why,
    conflict: why,
    server: view.desired.name,
  };
}

function removeExtra(ctx: Ctx, view: ServerView, extra: ObservedContainer): Decision {
  const name = view.desired.name;
  const kept = view.main!;
  const because = `CT ${extra.vmid} is a second container of ${name} (CT ${kept.vmid} is kept)`;
  if (extra.lock)
    return wait(ctx, view, "Duplicate", `${because}, and it is locked (${extra.lock})`, ctx.t.taskPollMs);
  if (extra.status !== "running")
    return act(ctx, view, {
      action: { kind: "DeleteContainer", server: name, node: extra.node, vmid: extra.vmid },
      because,
      reason: "RemovingDuplicate",
    });
  return gated(ctx, view, because, () =>
    act(ctx, view, { action: stop(ctx, name, extra), because, reason: "StoppingDuplicate", wentDown: true }),
  );
}

function pullImage(ctx: Ctx, view: ServerView, step: string): Decision | undefined {
  const d = view.desired;
  const listed = ctx.input.observed.images[d.node];
  if (!listed)
    return wait(ctx, view, step, `the image storage of node ${d.node} was not listed`, ctx.t.problemRetryMs);
  if (listed.includes(d.imageVolume)) return undefined;
  const backoff = backoffWait(ctx, "PullImage", undefined);
  if (backoff) return backoff;
  return act(ctx, view, {
    action: {
      kind: "PullImage",
      node: d.node,
      storage: d.pull.storage,
      reference: d.pull.reference,
      volid: d.imageVolume,
    },
    because: `${d.imageVolume} is not on node ${d.node} yet`,
    reason: "PullingImage",
    step,
    effect: (draft) => {
      const images = draft.images ?? [];
      if (!images.some((i) => i.node === d.node && i.volid === d.imageVolume))
        draft.images = [...images, { node: d.node, volid: d.imageVolume }];
    },
  });
}

function createContainer(ctx: Ctx, view: ServerView, because: string, step = "Create"): Decision {
  const d = view.desired;
  const backoff = backoffWait(ctx, "CreateContainer", d.name);
  if (backoff) return backoff;
  return act(ctx, view, {
    action: { kind: "CreateContainer", server: d.name, node: d.node, params: d.create },
    because,
    reason: "CreatingContainer",
    step,
  });
}

/** Row R0: the new container is made beside the old one, stopped, while the old one serves. */
function beginSwap(
  ctx: Ctx,
  view: ServerView,
  main: ObservedContainer,
  tier: Extract<TierVerdict, { tier: "rebuild" }>,
): Decision {
  const name = view.desired.name;
  const serving = main.status === "running";
  const step = serving ? "Preflight" : "Create";
  return begin(ctx, view, serving, `the new container of ${name}`, () => {
    const pull = pullImage(ctx, view, step);
    if (pull) return pull;
    return createContainer(
      ctx,
      view,
      `${name} needs a new container (${tier.reason}); CreateThenSwap makes it stopped beside CT ${main.vmid}${serving ? ", which keeps serving" : ""}`,
      step,
    );
  });
}

/** Rows R1, R2 (RemoveThenCreate, and a rollback that rebuilds): the runbook's stop, delete, create. */
function rebuild(
  ctx: Ctx,
  view: ServerView,
  main: ObservedContainer,
  tier: Extract<TierVerdict, { tier: "rebuild" }>,
): Decision {
  const name = view.desired.name;
  const because = `${name} needs a new container: ${tier.reason}`;
  const serving = main.status === "running";
  return begin(ctx, view, serving, `the rebuild of ${name}`, () => {
    // The new image is pulled before the old server goes down.
    const pull = pullImage(ctx, view, serving ? "Preflight" : "PullImage");
    if (pull) return pull;
    if (!serving)
      return act(ctx, view, {
        action: { kind: "DeleteContainer", server: name, node: main.node, vmid: main.vmid },
        because: `${because}; CT ${main.vmid} is stopped`,
        reason: "RemovingContainer",
      });
    return rolloutGate(ctx, view, because, () =>
      act(ctx, view, {
        action: stop(ctx, name, main),
        because,
        reason: "StoppingForRebuild",
        wentDown: true,
      }),
    );
  });
}

/** Rows E1 to E3: an env change, in place for both strategies, behind the same gates. */
function restart(
  ctx: Ctx,
  view: ServerView,
  main: ObservedContainer,
  tier: Extract<TierVerdict, { tier: "restart" }>,
): Decision {
  const d = view.desired;
  const configure = (because: string, step: string) => configureEnv(ctx, view, main, because, step);
  if (main.status !== "running")
    // Stopped with our env pending: the start applies it.
    return tier.envPending
      ? startContainer(ctx, view, main)
      : configure(
          `the env of ${d.name} is not the spec's; CT ${main.vmid} is stopped, so it applies at its start`,
          "Configure",
        );
  if (!tier.envPending)
    return begin(ctx, view, true, `the new env of ${d.name}`, () =>
      configure(
        `the env of ${d.name} differs; written now it waits for the next start (Proxmox accepts it before anything goes down)`,
        "Preflight",
      ),
    );
  const because = `${d.name} runs with an old env; the new one waits for a restart`;
  return rolloutGate(ctx, view, because, () =>
    act(ctx, view, {
      action: stop(ctx, d.name, main),
      because,
      reason: "StoppingForRestart",
      wentDown: true,
    }),
  );
}

/** Rows V, VF, H: a running server is verified by consecutive probes, each step of them under a timeout. */
function verify(ctx: Ctx, view: ServerView, main: ObservedContainer): Decision {
  const name = view.desired.name;
  if (view.verified) return { kind: "done" };
  if (view.passing)
    return wait(
      ctx,
      view,
      "Verify",
      `${name} passed ${view.passes} of ${ctx.t.requiredPasses} probes in a row`,
      ctx.t.verifyPollMs,
    );
  const timeout = durationMs(ctx.input.spec.rollout.healthGateTimeout);
  // Measured from its start or from when it failed, whichever is later.
  const since = latest([view.runningSince?.toISOString(), view.lastDownAt]);
  const elapsed = since ? ctx.now.getTime() - since.getTime() : Infinity;
  const problem = view.problem ?? "its probe failed";
  if (elapsed < timeout)
    return wait(ctx, view, "Verify", `${name} is not healthy yet (${problem})`, ctx.t.verifyPollMs);
  if (inRollout(ctx, view)) return gateFailed(ctx, view, main);
  const backoff = backoffWait(ctx, "StopContainer", name);
  if (backoff) return backoff;
  const because = `${name} has failed its health probe for over ${ctx.input.spec.rollout.healthGateTimeout} (${problem}); a restart may bring it back`;
  return gated(ctx, view, because, () =>
    act(ctx, view, { action: stop(ctx, name, main), because, reason: "RestartingUnhealthy", wentDown: true }),
  );
}

/** The server came back from a step of the rollout (or a rollback), rather than drifting. */
function inRollout(ctx: Ctx, view: ServerView): boolean {
  const r = ctx.input.status.rollout;
  const name = view.desired.name;
  return view.swap !== undefined || rollingBack(ctx, name) || (r?.server === name && r.step !== "RealmSync");
}

const rollingBack = (ctx: Ctx, server: string) =>
  ctx.failure?.server === server && ctx.failure.rollback?.state === "RollingBack";

/** Row VF: the health gate failed. Recorded first (status only), so a crash cannot forget it. */
function gateFailed(ctx: Ctx, view: ServerView, main: ObservedContainer): Decision {
  const name = view.desired.name;
  const problem = view.problem ?? "its probe failed";
  const timeout = ctx.input.spec.rollout.healthGateTimeout;
  const f = ctx.failure;
  if (f?.server === name && f.rollback) {
    const message = `${name} failed its health gate again after rolling back to ${f.rollback.image} (${problem})`;
    return recordFailure(
      ctx,
      view,
      { ...f, rollback: { ...f.rollback, state: "Failed", message } },
      {
        reason: "RollbackFailed",
        message,
      },
    );
  }
  const target = targetOf(ctx, name);
  const r = ctx.input.status.rollout;
  const same = r?.server === name;
  const previousImage = same && r.previousImage ? r.previousImage : view.before?.image;
  const previousHash = same && r.previousHash ? r.previousHash : undefined;
  const step = main.probe?.failedStep;
  const message = `${name} failed its health gate on ${target.image}: not ${ctx.t.requiredPasses} passes in a row within rollout.healthGateTimeout ${timeout}${step ? `, step ${step}` : ""} (${problem})`;
  const failure: RolloutFailure = {
    server: name,
    image: target.image,
    hash: target.configHash,
    ...(step ? { failedStep: step } : {}),
    message,
    time: ctx.stamp,
    ...(previousImage ? { previousImage } : {}),
    ...(previousHash ? { previousHash } : {}),
  };
  return recordFailure(ctx, view, failure, { reason: "HealthGateFailed", message });
}

function recordFailure(ctx: Ctx, view: ServerView, failure: RolloutFailure, why: Why): Decision {
  return {
    kind: "record",
    why: `next: record that ${why.message}`,
    progress: why,
    event: { type: "Warning", reason: why.reason, action: "Verify", note: why.message },
    effect: (draft) => (draft.rollout = { ...draft.rollout, failure }),
    server: view.desired.name,
    step: why.reason,
    rollout: true,
    phase: "Degraded",
  };
}

/** The server as the spec asks for it (a rollback drives view.desired to the previous image instead). */
function targetOf(ctx: Ctx, name: string): DesiredServer {
  return ctx.desired.servers.find((d) => d.name === name)!;
}

function stop(ctx: Ctx, server: string, c: ObservedContainer) {
  // A shutdown that failed is not asked for again: a hard stop aborts what is left of it.
  const failed = ctx.draft.lastFailure;
  return stopAction(ctx, server, c, failed?.action === "StopContainer" && failed.server === server);
}

// ---- a swap (CreateThenSwap) ------------------------------------------------------

/** Rows W0 to W5: the new container takes over from the old one, which is kept stopped until it passes. */
function swap(ctx: Ctx, view: ServerView, { old, next }: SwapPair): Decision {
  const d = view.desired;
  const name = d.name;
  for (const c of [next, old]) if (c.lock) return waitForLock(ctx, view, c);
  if (!next.config) return waitForConfig(ctx, view, next);
  const oldServes = old.status === "running";
  if (next.status === "running" && oldServes) return twoRunning(ctx, view, old, next);
  if (next.status !== "running") {
    const tier = classify({ ...next, config: next.config }, d, view.before?.envKeys);
    const step = oldServes ? "Preflight" : "Configure";
    if (tier.tier === "restart")
      return begin(ctx, view, oldServes, `the new container of ${name}`, () =>
        configureEnv(
          ctx,
          view,
          next,
          `${name}'s new container CT ${next.vmid} has the image's env only`,
          step,
        ),
      );
    if (tier.tier === "inPlace") return updateInPlace(ctx, view, next, tier, step);
    if (oldServes) {
      const because = `${name}'s new container CT ${next.vmid} is ready; CT ${old.vmid} makes way for it`;
      return rolloutGate(ctx, view, because, () =>
        act(ctx, view, { action: stop(ctx, name, old), because, reason: "StoppingForSwap", wentDown: true }),
      );
    }
    return startContainer(
      ctx,
      view,
      next,
      `${name}'s new container CT ${next.vmid} is configured and the old CT ${old.vmid} stopped`,
    );
  }
  const verdict = verify(ctx, view, next);
  if (verdict.kind !== "done") return verdict;
  return act(ctx, view, {
    action: { kind: "DeleteContainer", server: name, node: old.node, vmid: old.vmid },
    because: `${name}'s new container CT ${next.vmid} passed its health gate; CT ${old.vmid} was kept stopped until now`,
    reason: "RemovingOldContainer",
    step: "Cleanup",
  });
}

/** Row W0: never two running containers for one server; the one that serves stays. */
function twoRunning(ctx: Ctx, view: ServerView, old: ObservedContainer, next: ObservedContainer): Decision {
  const name = view.desired.name;
  const keepNext = view.main === next && view.verified;
  const victim = keepNext ? old : next;
  return act(ctx, view, {
    action: stop(ctx, name, victim),
    because: `${name} has two running containers (CT ${old.vmid} and CT ${next.vmid}); CT ${(keepNext ? next : old).vmid} keeps serving`,
    reason: "StoppingSecondContainer",
    step: "Stop",
  });
}

// ---- a failed health gate ------------------------------------------------------------

/** Rows K0 to K6: the server whose health gate failed, while the spec still asks for what failed. */
function failedServer(ctx: Ctx, view: ServerView, f: RolloutFailure): Decision {
  const degraded = (d: Decision): Decision =>
    d.kind === "done" ? d : { ...d, rollout: true, phase: "Degraded" };
  const rb = f.rollback;
  if (!rb) {
    if (view.verified && view.main?.configHash === f.hash) return recovered(view, f);
    if (!ctx.input.spec.rollout.autoRollback) return degraded(halted(ctx, view, f));
    return degraded(beginRollback(ctx, view, f));
  }
  if (rb.state === "RolledBack") return degraded(rolledBack(ctx, view, f));
  if (rb.state === "Failed")
    return degraded(
      hold(view, { reason: "RollbackFailed", message: rb.message ?? f.message }, "RollbackFailed"),
    );
  const step = rb.mode === "Swap" ? rollbackSwap(ctx, view, f) : rollbackRebuild(ctx, view, f);
  return degraded(asRollbackStep(step));
}

const asRollbackStep = (d: Decision): Decision =>
  (d.kind === "act" || d.kind === "wait") && d.step && !d.step.startsWith("Rollback")
    ? { ...d, step: `Rollback${d.step}` }
    : d;

function hold(view: ServerView, why: Why, step: string): Decision {
  return { kind: "blocked", why: `halted: ${why.message}`, stalled: why, server: view.desired.name, step };
}

/** The image a server runs: the spec's once it is built for it, else the one the status recorded. */
function servedImage(ctx: Ctx, view: ServerView): string | undefined {
  const target = targetOf(ctx, view.desired.name);
  return view.main?.buildHash === target.buildHash ? target.image : view.before?.image;
}

function peerOf(ctx: Ctx, name: string): string {
  return ctx.views.find((v) => v.desired.name !== name)?.desired.name ?? "its peer";
}

/** Row K0. */
function halted(ctx: Ctx, view: ServerView, f: RolloutFailure, nothingToGoBackTo?: string): Decision {
  const peer = ctx.views.find((v) => v.desired.name !== f.server);
  const serves = peer ? servedImage(ctx, peer) : undefined;
  const fix = ctx.input.spec.rollout.autoRollback
    ? ""
    : ", or set spec.rollout.autoRollback to put it back on the previous configuration";
  const message = `${f.message}; the rollout is halted: ${peerOf(ctx, f.server)} is untouched${serves ? ` and serves ${serves}` : ""}${nothingToGoBackTo ? `; autoRollback cannot help: ${nothingToGoBackTo}` : ""}; change spec.image or spec.rollout.restartedAt to try again${fix}`;
  return hold(view, { reason: "HealthGateFailed", message }, "HealthGateFailed");
}

/** Row K7: the rollout holds everywhere while a server's failure stands (Stalled once nothing more is done). */
function haltedPeer(ctx: Ctx, view: ServerView, f: RolloutFailure): Decision {
  const message = `${view.desired.name} is left as it is: the rollout is halted since ${f.server} failed its health gate on ${f.image}`;
  const held = { server: view.desired.name, step: "Halted", rollout: true, phase: "Degraded" as const };
  if (f.rollback?.state === "RollingBack")
    return {
      kind: "wait",
      why: `waiting: ${message}, while ${f.server} is rolled back`,
      progress: { reason: "RollingBack", message: `${message}, while ${f.server} is rolled back` },
      retryMs: ctx.t.gatePollMaxMs,
      ...held,
    };
  const reason =
    f.rollback?.state === "RolledBack" ? "RolledBack" : f.rollback ? "RollbackFailed" : "HealthGateFailed";
  return { kind: "blocked", why: `halted: ${message}`, stalled: { reason, message }, ...held };
}

/**
 * Row K7 for a peer whose new container was made in the preflight: it is
 * never swapped in while the rollout is halted, and once the failed server is
 * rolled back it is removed (stopped, never started), leaving the pair as it
 * was before the rollout.
 */
function heldSwap(ctx: Ctx, view: ServerView, { old, next }: SwapPair, f: RolloutFailure): Decision {
  const unused = next.status !== "running" && old.status === "running" && !next.lock;
  if (f.rollback?.state !== "RolledBack" || !unused) return haltedPeer(ctx, view, f);
  return act(ctx, view, {
    action: { kind: "DeleteContainer", server: view.desired.name, node: next.node, vmid: next.vmid },
    because: `${f.server} was rolled back to ${f.rollback.image}; ${view.desired.name}'s new container CT ${next.vmid} for ${f.image} was never started`,
    reason: "RemovingUnusedContainer",
    step: "Cleanup",
    phase: "Degraded",
  });
}

/** Row K6: a server whose failure stands but that passes now (the database came back): the rollout goes on. */
function recovered(view: ServerView, f: RolloutFailure): Decision {
  const message = `${f.server} passes its health gate on ${f.image} now; the rollout goes on`;
  return {
    kind: "record",
    why: `next: ${message}`,
    progress: { reason: "HealthGateRecovered", message },
    event: { type: "Normal", reason: "HealthGateRecovered", action: "Verify", note: message },
    effect: (draft) => {
      if (!draft.rollout) return;
      const { failure: _f, ...rest } = draft.rollout;
      draft.rollout = rest;
    },
    server: view.desired.name,
    step: "Verify",
    rollout: true,
  };
}

/** Row K1: what the server goes back to, recorded before the first step back. */
function beginRollback(ctx: Ctx, view: ServerView, f: RolloutFailure): Decision {
  const name = view.desired.name;
  const kept = keptOld(view, f);
  const target = targetOf(ctx, name);
  let rollback: NonNullable<RolloutFailure["rollback"]>;
  if (kept)
    rollback = {
      mode: "Swap",
      state: "RollingBack",
      image: f.previousImage ?? `the configuration of CT ${kept.vmid}`,
      ...(kept.configHash ? { hash: kept.configHash } : {}),
      since: ctx.stamp,
    };
  else if (f.previousImage && f.previousImage !== f.image)
    rollback = {
      mode: "Rebuild",
      state: "RollingBack",
      image: f.previousImage,
      hash: rebasedServer(target, f.previousImage).configHash,
      since: ctx.stamp,
    };
  else
    return halted(
      ctx,
      view,
      f,
      f.previousImage
        ? `the change was not of the image (env or rollout.restartedAt), and the previous env is not kept (it holds the database URI)`
        : "the previous image is not recorded",
    );
  const how =
    rollback.mode === "Swap"
      ? `starting the kept old container CT ${kept!.vmid} again`
      : `rebuilding it from ${rollback.image}`;
  const message = `${name} failed its health gate on ${f.image}; rolling it back to ${rollback.image}, ${how}`;
  return {
    kind: "record",
    why: `next: record the rollback: ${message}`,
    progress: { reason: "RollingBack", message },
    event: { type: "Warning", reason: "RollingBack", action: "Rollback", note: message },
    effect: (draft) => (draft.rollout = { ...draft.rollout, failure: { ...f, rollback } }),
    server: name,
    step: "Rollback",
  };
}

/** The old container a swap kept stopped: ours for this server, not on the configuration that failed. */
function keptOld(view: ServerView, f: RolloutFailure): ObservedContainer | undefined {
  const ours = containersOf(view);
  const hash = f.rollback?.hash ?? f.previousHash;
  return (
    ours.find((c) => hash !== undefined && c.configHash === hash) ??
    (f.rollback ? undefined : ours.find((c) => c.configHash !== f.hash))
  );
}

function containersOf(view: ServerView): ObservedContainer[] {
  const all = [
    ...(view.swap ? [view.swap.old, view.swap.next] : view.main ? [view.main] : []),
    ...view.extras,
  ];
  return [...new Set(all)];
}

/** Row K2: one start of the kept old container undoes the swap. */
function rollbackSwap(ctx: Ctx, view: ServerView, f: RolloutFailure): Decision {
  const name = view.desired.name;
  const rb = f.rollback!;
  const kept = keptOld(view, f);
  if (!kept)
    return recordFailure(
      ctx,
      view,
      { ...f, rollback: { ...rb, state: "Failed" } },
      {
        reason: "RollbackFailed",
        message: `the kept old container of ${name} is gone: nothing to roll back to`,
      },
    );
  const ours = containersOf(view);
  const locked = ours.find((c) => c.lock);
  if (locked)
    return wait(ctx, view, "Locked", `CT ${locked.vmid} is locked (${locked.lock})`, ctx.t.taskPollMs);
  const failed = ours.filter((c) => c !== kept);
  const running = failed.find((c) => c.status === "running");
  if (running) {
    const because = `CT ${running.vmid} failed its health gate; the kept CT ${kept.vmid} takes over again`;
    return gated(
      ctx,
      view,
      because,
      () =>
        act(ctx, view, { action: stop(ctx, name, running), because, reason: "RollingBack", step: "Stop" }),
      { pause: false },
    );
  }
  if (kept.status !== "running")
    return startContainer(ctx, view, kept, `${name} goes back to CT ${kept.vmid} (${rb.image})`);
  const verdict = verify(ctx, view, kept);
  if (verdict.kind !== "done") return verdict;
  const left = failed[0];
  if (left)
    return act(ctx, view, {
      action: { kind: "DeleteContainer", server: name, node: left.node, vmid: left.vmid },
      because: `${name} serves ${rb.image} again from CT ${kept.vmid}; CT ${left.vmid} failed its health gate`,
      reason: "RemovingFailedContainer",
      step: "Cleanup",
    });
  return rolledBackRecord(view, f);
}

/** Row K3: the runbook's path, to the previous image (view.desired is rebased on it). */
function rollbackRebuild(ctx: Ctx, view: ServerView, f: RolloutFailure): Decision {
  const d = driveServer(ctx, view);
  return d.kind === "done" ? rolledBackRecord(view, f) : d;
}

/** Row K4. */
function rolledBackRecord(view: ServerView, f: RolloutFailure): Decision {
  const rb = f.rollback!;
  const message = `${f.server} failed its health gate on ${f.image} and was rolled back to ${rb.image}`;
  return {
    kind: "record",
    why: `next: record that ${message}`,
    progress: { reason: "RolledBack", message },
    event: { type: "Warning", reason: "RolledBack", action: "Rollback", note: message },
    effect: (draft) =>
      (draft.rollout = {
        ...draft.rollout,
        failure: { ...f, rollback: { ...rb, state: "RolledBack", message } },
      }),
    server: view.desired.name,
    step: "RolledBack",
  };
}

function rolledBack(ctx: Ctx, view: ServerView, f: RolloutFailure): Decision {
  const main = view.main;
  if (main && !main.lock && main.config && !view.running) return startContainer(ctx, view, main);
  const rb = f.rollback!;
  const message = `${f.server} failed its health gate on ${f.image}${f.failedStep ? ` (step ${f.failedStep})` : ""} and was rolled back to ${rb.image}; the rollout is halted, ${peerOf(ctx, f.server)} untouched; change spec.image or spec.rollout.restartedAt to try again`;
  return hold(view, { reason: "RolledBack", message }, "RolledBack");
}

// ---- the gates ----------------------------------------------------------------------

/**
 * Row PA for the steps that begin work on a server that serves: while the
 * rollout is paused they wait. A server that is down is never held there.
 */
function begin(ctx: Ctx, view: ServerView, serving: boolean, what: string, then: () => Decision): Decision {
  if (!ctx.paused || !serving || rollingBack(ctx, view.desired.name)) return then();
  const message = `the rollout is paused before ${what} (spec.rollout.paused or the annotation ${PAUSED_ANNOTATION})`;
  return {
    kind: "wait",
    why: `waiting: ${message}`,
    progress: { reason: "RolloutPaused", message },
    retryMs: ctx.t.gatePollMaxMs,
    server: view.desired.name,
    step: "Paused",
    rollout: true,
  };
}

/** Rows PA, PF, PG before a rollout step that takes a server down. */
function rolloutGate(ctx: Ctx, view: ServerView, because: string, then: () => Decision): Decision {
  const name = view.desired.name;
  if (rollingBack(ctx, name)) return gated(ctx, view, because, then, { pause: false });
  const owed = ctx.paused ? [] : preflightOwed(ctx);
  if (owed.length === 0) return inOrder(ctx, view, because) ?? gated(ctx, view, because, then);
  return rolloutWait(
    ctx,
    name,
    "Preflight",
    "Preflight",
    `${because}; first the preflight: ${owed.join("; ")}`,
  );
}

/** A wait of the rollout's gates, at the gate poll; Stalled once it outlasts the progress deadline. */
function rolloutWait(ctx: Ctx, server: string, step: string, reason: string, message: string): Decision {
  return {
    kind: "wait",
    why: `waiting: ${message}`,
    progress: { reason, message },
    retryMs: ctx.t.gatePollMaxMs,
    server,
    step,
    ...overdue(ctx, server, step, message),
  };
}

/** Row PF: what must be ready on every server before any server goes down. */
function preflightOwed(ctx: Ctx): string[] {
  return ctx.views.flatMap((v) => {
    const owed = preflightOf(ctx, v);
    return owed ? [owed] : [];
  });
}

function preflightOf(ctx: Ctx, v: ServerView): string | undefined {
  const d = v.desired;
  const name = d.name;
  if (v.swap) {
    const next = v.swap.next;
    if (next.lock || !next.config) return `${name}'s new container CT ${next.vmid} is still being made`;
    if (next.status === "running") return undefined;
    const tier = classify({ ...next, config: next.config }, d, v.before?.envKeys).tier;
    return tier === "inSync" ? undefined : `${name}'s new container CT ${next.vmid} is not configured yet`;
  }
  const main = v.main;
  if (!main?.config || main.lock || v.extras.length > 0) return undefined;
  const tier = classify({ ...main, config: main.config }, d, v.before?.envKeys);
  if (tier.tier === "rebuild") {
    if (!ctx.input.observed.images[d.node]?.includes(d.imageVolume))
      return `${d.imageVolume} is not on node ${d.node} yet`;
    if (ctx.input.spec.rollout.strategy === "CreateThenSwap" && main.status === "running")
      return `${name}'s new container is not made yet`;
  }
  if (tier.tier === "restart" && main.status === "running" && !tier.envPending)
    return `${name}'s new env is not written yet`;
  return undefined;
}

/**
 * Row PO: the rollout takes servers down in spec order. Without it a waiting
 * ldap1 (its peer unhealthy) would let that unhealthy peer be taken down
 * first, since ldap1 itself passes the peer's gate.
 */
function inOrder(ctx: Ctx, view: ServerView, because: string): Decision | undefined {
  const i = ctx.views.indexOf(view);
  const first = ctx.views.slice(0, i).find((v) => !rolled(v));
  if (!first) return undefined;
  const message = `${because}; ${first.desired.name} is rolled first (${first.problem ?? "not rolled yet"})`;
  return rolloutWait(ctx, view.desired.name, "WaitingForPeer", "WaitingForPeer", message);
}

/** Built and configured for the spec, alone, and verified: its part of the rollout is done. */
function rolled(v: ServerView): boolean {
  const main = v.main;
  if (v.swap || v.extras.length > 0 || !main?.config || main.lock || !v.verified) return false;
  const tier = classify({ ...main, config: main.config }, v.desired, v.before?.envKeys).tier;
  return tier !== "rebuild" && tier !== "restart";
}

/** A step that takes a serving server down: only through the peer gate. */
function gated(
  ctx: Ctx,
  view: ServerView,
  because: string,
  then: () => Decision,
  o: { pause: boolean } = { pause: true },
): Decision {
  const verdict = gateFor(ctx, view, o.pause);
  if (verdict.open) return then();
  const paused = verdict.reason === "RolloutPaused";
  const step = paused ? "Paused" : "WaitingForPeer";
  const progress = {
    reason: paused ? "RolloutPaused" : "WaitingForPeer",
    message: `${because}; ${verdict.message}`,
  };
  return {
    kind: "wait",
    why: `waiting: ${because}; ${verdict.message}`,
    progress,
    retryMs: Math.min(verdict.retryAfterMs ?? ctx.t.gatePollMaxMs, ctx.t.gatePollMaxMs),
    server: view.desired.name,
    step,
    ...(paused ? {} : overdue(ctx, view.desired.name, step, progress.message)),
  };
}

/** Stalled once a wait has lasted longer than rollout.progressDeadline (and still waiting). */
function overdue(ctx: Ctx, server: string, step: string, message: string): { stalled?: Why } {
  const { progressDeadline } = ctx.input.spec.rollout;
  const since = sinceOf(ctx, server, step);
  if (ctx.now.getTime() - new Date(since).getTime() <= durationMs(progressDeadline)) return {};
  return {
    stalled: {
      reason: "ProgressDeadlineExceeded",
      message: `${message} (waiting since ${since}, longer than rollout.progressDeadline ${progressDeadline})`,
    },
  };
}

function gateFor(ctx: Ctx, view: ServerView, pause: boolean): GateVerdict {
  const peer = ctx.views.find((v) => v !== view)!;
  const db = ctx.input.observed.database;
  return peerGate({
    now: ctx.now,
    server: view.desired.name,
    peer: {
      name: peer.desired.name,
      running: peer.running && peer.extras.length === 0,
      passing: peer.passing,
      passes: peer.passes,
      ...(peer.problem ? { problem: peer.problem } : {}),
    },
    ...(ctx.lastDownAt ? { lastDownAt: ctx.lastDownAt } : {}),
    settleMs: durationMs(ctx.input.spec.rollout.settleTime),
    requiredPasses: ctx.t.requiredPasses,
    ...(db ? { database: { ok: db.ok, ...(db.problem ? { problem: db.problem } : {}) } } : {}),
    paused: pause && ctx.paused,
  });
}

/** Row L: a lock (a task of Proxmox's own, or of ours) is waited out at the task poll. */
function waitForLock(ctx: Ctx, view: ServerView, c: ObservedContainer): Decision {
  const step = c.lock === "create" ? "Create" : "Locked";
  return wait(ctx, view, step, `CT ${c.vmid} is locked (${c.lock})`, ctx.t.taskPollMs);
}

/** Row L: a config that could not be read is looked at again after the problem retry. */
function waitForConfig(ctx: Ctx, view: ServerView, c: ObservedContainer): Decision {
  return wait(ctx, view, "Unknown", `the config of CT ${c.vmid} could not be read`, ctx.t.problemRetryMs);
}
