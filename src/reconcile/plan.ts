// THE STATE MACHINE of an LdapPair: spec, status, what Proxmox and the probes
// show, and the time in; the one next action, the status, the conditions,
// the events and when to look again out. Pure: no I/O, no clock.
//
// One reconcile is one plan. The first rule that applies decides; a server
// that must wait (a closed gate) lets the next part act, a part that acts
// ends the plan. Every state is re-derived from Proxmox on each reconcile
// (tags carry owner and hashes); the status adds only what Proxmox cannot
// say: the task in flight, probe history, times, sync bookkeeping, the DNS
// to restore. Where they disagree, Proxmox wins.
//
// | #  | state            | the observation that moves it                        | action (or wait)                                       |
// |----|------------------|------------------------------------------------------|--------------------------------------------------------|
// | D0 | Deleting         | deletionTimestamp, our finalizer gone                | nothing                                                |
// | D1 | Deleting         | annotation ldapgateway.io/drop-finalizer             | RemoveFinalizer (Warning FinalizerDropped)             |
// | D2 | Deleting         | deletionPolicy Retain                                | RemoveFinalizer (Retained: what is left, named)        |
// | D3 | Deleting         | Secrets or Proxmox unusable                          | wait, the condition says why and how to drop it        |
// | D4 | Deleting         | status.task running or unreadable                    | wait                                                   |
// | D5 | Deleting         | a container of ours: running / stopped / locked      | StopContainer / DeleteContainer (purge) / wait         |
// | D6 | Deleting         | a volume it pulled, listed, no other pair uses it    | DeleteImage                                            |
// | D7 | Deleting         | the realm it created (marker: created)               | DeleteRealm (an adopted one stays)                     |
// | D8 | Deleting         | recorded node DNS differs from the node's            | SetNodeDns(previous); equal: forget the record         |
// | D9 | Deleting         | nothing of ours left                                 | RemoveFinalizer (CleanedUp)                            |
// | F  | New              | no finalizer                                         | AddFinalizer, before any Proxmox call                  |
// | S  | SecretsBroken    | Secret/key missing, URI malformed, env refused       | none: Stalled                                          |
// | P  | ProxmoxBroken    | 401, 403, < 9.1, unknown node or storage (permanent) | none: Stalled                                          |
// |    |                  | unreachable, 5xx, node down (transient)              | wait: Reconciling                                      |
// | T  | TaskRunning      | status.task running, or its status unreadable        | wait (taskPollMs)                                      |
// |    | TaskEnded        | ok / failed                                          | fold into status (event, lastFailure), then go on      |
// Each server, in spec order (ldap1 first):
// | C  | Conflict         | a container we do not own has the hostname           | none for this server: Conflict names vmid and node     |
// | X  | Duplicate        | two or more containers of ours                       | the extra: stopped -> Delete; running -> gate -> Stop  |
// | A  | AddressTaken     | no container; its static address is in use           | none: Conflict                                         |
// | I  | ImageMissing     | no container, or a rebuild due; image not on node    | PullImage (once per node and tag, before any stop)     |
// | N  | Absent           | no container                                         | CreateContainer (stopped, tagged; backoff)             |
// | L  | Locked           | a lock (create, ...) or the config unreadable        | wait                                                   |
// | R1 | RebuildRunning   | build hash or node differs; running                  | gate -> StopContainer                                  |
// | R2 | RebuildStopped   | build hash or node differs; stopped                  | DeleteContainer (then N)                               |
// | E1 | EnvStopped       | env not ours; stopped (fresh from create)            | ConfigureEnv                                           |
// | E2 | EnvRunning       | env not ours; running; ours not pending              | ConfigureEnv (pending until the next start)            |
// | E3 | RestartPending   | ours pending; running                                | gate -> StopContainer (then Z applies it)              |
// | U  | InPlace          | cores/memory/swap/onboot/description/tags differ     | UpdateInPlace (digest), never gated                    |
// | Z  | Stopped          | stopped, configured                                  | StartContainer (never gated; backoff)                  |
// | V  | Verifying        | running; not yet passing often enough, within        | wait (verifyPollMs)                                    |
// |    |                  | healthGateTimeout of its start or failure            |                                                        |
// | H  | Failing          | probe failing past healthGateTimeout                 | gate -> StopContainer (a restart; backoff)             |
// | OK | Healthy          | passes in a row, in sync                             | none                                                   |
// The realm (realm.manage):
// | M1 | RealmAbsent      | no realm of that name                                | CreateRealm (marker: created); a sync is owed          |
// | M2 | RealmForeign     | its marker names another pair; no marker, no adopt   | none: Conflict                                         |
// | M3 | RealmDrift       | a setting differs after normalisation                | UpdateRealm (what differs, digest); a sync is owed     |
// Node DNS (nodeDns):
// | Q1 | DnsUnrecorded    | a node's DNS differs, its previous values unrecorded | record them in status first (no action, look again)    |
// | Q2 | DnsDrift         | a node's DNS differs, previous values recorded       | SetNodeDns                                             |
// Syncs:
// | Y  | SyncDue          | owed (created, updated, rebuilt, never synced), the  | SyncRealm, once a server is verified, none is starting,|
// |    |                  | sync-now annotation changed, syncInterval passed     | no rollout is under way and the database passes        |
// |    |                  |                                                      | (backoff after a failure)                              |
// | G  | ReadFailed       | a part could not be read (Observation.readProblems)  | none for it: Stalled if permanent (a 403), else wait   |
// | OK | InSync           | nothing above                                        | none: look again at the next sync or the resync        |
//
// A gate or verify wait longer than rollout.progressDeadline is Stalled; a
// failed action is Stalled after stallAfterAttempts tries (and still retried).
import type { SyncReason, TaskAction } from "../api/ldappair.js";
import { durationMs } from "../api/duration.js";
import {
  desiredNodeDns,
  nodeDnsEqual,
  nodeDnsUpdate,
  realmCreateParams,
  realmUpdate,
  type NodeDns,
} from "../proxmox/normalize.js";
import type { Assessment, Why } from "./conditions.js";
import { realmManagerOf, realmMarker, realmOrigin } from "./desired.js";
import { peerGate, type GateVerdict } from "./gate.js";
import {
  DEFAULT_TIMINGS,
  DROP_FINALIZER_ANNOTATION,
  SYNC_NOW_ANNOTATION,
  describeAction,
  type Action,
  type DesiredPair,
  type ObservedContainer,
  type Plan,
  type PlanInput,
  type PlannedStatus,
  type PlanTimings,
  type Problem,
} from "./model.js";
import type { ServerView } from "./servers.js";
import {
  REQUIRED_SYNCS,
  baseStatus,
  capitalize,
  context,
  latest,
  newProblemEvent,
  sameFailure,
  seconds,
  type Ctx,
  type Decision,
  type Effect,
} from "./plan-context.js";
import { conclude, finish } from "./plan-report.js";
import { classify, mergedEnv, staleEnvKeys, type TierVerdict } from "./tiers.js";

// What the shell writes after act(), and the reason a preflight result maps to.
export { databaseReason, planActionFailed, planTaskStarted } from "./plan-report.js";

// ---- the entry ----------------------------------------------------------------

export function plan(input: PlanInput): Plan {
  const t = { ...DEFAULT_TIMINGS, ...input.timings };
  if (input.meta.deleting) return planDeletion(input, t);
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
  return (
    ctx.input.status.task?.action === "SyncRealm" &&
    realm?.lastSyncTime !== undefined &&
    !REQUIRED_SYNCS.has(realm.pendingSync ?? "Interval")
  );
}

/**
 * Parts that could not be read (a realm behind a missing privilege, a node
 * whose DNS failed): the rest goes on, and the reason is shown: Stalled when
 * only a person can fix it (a 403 names the privilege and path).
 */
function readProblemDecisions(ctx: Ctx): Decision[] {
  return (ctx.input.observed.readProblems ?? []).map((p): Decision => {
    const why = { reason: p.reason, message: p.message };
    return p.transient
      ? { kind: "wait", why: `waiting: ${p.message}`, progress: why, retryMs: ctx.t.problemRetryMs }
      : { kind: "blocked", why: `blocked: ${p.message}`, stalled: why };
  });
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
  return {
    kind: "wait",
    why: `waiting for task ${what} to end; looking again in ${seconds(ctx.t.taskPollMs)}`,
    progress: { reason: `${task.action}Running`, message: `task ${what} is running` },
    retryMs: ctx.t.taskPollMs,
    ...(task.server
      ? {
          server: task.server,
          step: STEP_OF_TASK[task.action],
          rollout: ctx.input.status.rollout?.server === task.server,
        }
      : {}),
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
  if (decision.kind !== "act" && decision.kind !== "wait") return decision;
  // A restart or rebuild the spec asks for is a rollout, and so is every step until that server is back.
  const tier = view.main?.config
    ? classify({ ...view.main, config: view.main.config }, view.desired, view.before?.envKeys).tier
    : undefined;
  const continuing = ctx.input.status.rollout?.server === view.desired.name;
  return { ...decision, rollout: continuing || tier === "rebuild" || tier === "restart" };
}

function decideServer(ctx: Ctx, view: ServerView): Decision {
  const d = view.desired;
  const name = d.name;
  if (view.foreign.length > 0) return foreignConflict(view);
  if (view.extras.length > 0) return removeExtra(ctx, view, view.extras[0]!);
  const main = view.main;
  if (!main) {
    if (view.addressTaken) {
      const { address, vmid, node } = view.addressTaken;
      const why = {
        reason: "AddressInUse",
        message: `${name}'s static address ${address} is already used by CT ${vmid} on ${node}: nothing is created until it is free or spec.servers[].network changes`,
      };
      return { kind: "blocked", why: `blocked: ${why.message}`, stalled: why, conflict: why, server: name };
    }
    return pullImage(ctx, view) ?? createContainer(ctx, view);
  }
  if (main.lock)
    return wait(
      ctx,
      view,
      main.lock === "create" ? "Create" : "Locked",
      `CT ${main.vmid} is locked (${main.lock})`,
      ctx.t.taskPollMs,
    );
  if (!main.config)
    return wait(
      ctx,
      view,
      "Unknown",
      `the config of CT ${main.vmid} could not be read`,
      ctx.t.problemRetryMs,
    );
  const tier = classify({ ...main, config: main.config }, d, view.before?.envKeys);
  if (tier.tier === "rebuild") return rebuild(ctx, view, main, tier);
  if (tier.tier === "restart") return restart(ctx, view, main, tier);
  if (tier.tier === "inPlace")
    return act(ctx, view, {
      action: {
        kind: "UpdateInPlace",
        server: name,
        node: main.node,
        vmid: main.vmid,
        set: tier.update.set,
        delete: tier.update.delete,
        digest: String(main.config.digest),
      },
      because: `${tier.reason}: Proxmox applies them to a ${main.status} container at once`,
      reason: "UpdatingInPlace",
    });
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

function pullImage(ctx: Ctx, view: ServerView): Decision | undefined {
  const d = view.desired;
  const listed = ctx.input.observed.images[d.node];
  if (!listed)
    return wait(
      ctx,
      view,
      "PullImage",
      `the image storage of node ${d.node} was not listed`,
      ctx.t.problemRetryMs,
    );
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
    effect: (draft) => {
      const images = draft.images ?? [];
      if (!images.some((i) => i.node === d.node && i.volid === d.imageVolume))
        draft.images = [...images, { node: d.node, volid: d.imageVolume }];
    },
  });
}

function createContainer(ctx: Ctx, view: ServerView): Decision {
  const d = view.desired;
  const backoff = backoffWait(ctx, "CreateContainer", d.name);
  if (backoff) return backoff;
  return act(ctx, view, {
    action: { kind: "CreateContainer", server: d.name, node: d.node, params: d.create },
    because: `${d.name} has no container`,
    reason: "CreatingContainer",
  });
}

function rebuild(
  ctx: Ctx,
  view: ServerView,
  main: ObservedContainer,
  tier: Extract<TierVerdict, { tier: "rebuild" }>,
): Decision {
  const name = view.desired.name;
  const because = `${name} needs a new container: ${tier.reason}`;
  // The new image is pulled before the old server goes down.
  const pull = pullImage(ctx, view);
  if (pull) return pull;
  if (main.status !== "running")
    return act(ctx, view, {
      action: { kind: "DeleteContainer", server: name, node: main.node, vmid: main.vmid },
      because: `${because}; CT ${main.vmid} is stopped`,
      reason: "RemovingContainer",
    });
  return gated(ctx, view, because, () =>
    act(ctx, view, { action: stop(ctx, name, main), because, reason: "StoppingForRebuild", wentDown: true }),
  );
}

function restart(
  ctx: Ctx,
  view: ServerView,
  main: ObservedContainer,
  tier: Extract<TierVerdict, { tier: "restart" }>,
): Decision {
  const d = view.desired;
  const stale = staleEnvKeys(d, view.before?.envKeys ?? []);
  const configure = (because: string) =>
    act(ctx, view, {
      action: {
        kind: "ConfigureEnv",
        server: d.name,
        node: main.node,
        vmid: main.vmid,
        env: mergedEnv(main.config!.env, d, stale),
        digest: String(main.config!.digest),
      },
      because,
      reason: "ConfiguringEnv",
      envKeys: d.env.map(([k]) => k),
    });
  if (main.status !== "running")
    // Stopped with our env pending: the start applies it.
    return tier.envPending
      ? startContainer(ctx, view, main)
      : configure(
          `the env of ${d.name} is not the spec's; CT ${main.vmid} is stopped, so it applies at its start`,
        );
  if (!tier.envPending)
    return configure(
      `the env of ${d.name} differs; written now it waits for the next start, no downtime yet`,
    );
  const because = `${d.name} runs with an old env; the new one waits for a restart`;
  return gated(ctx, view, because, () =>
    act(ctx, view, {
      action: stop(ctx, d.name, main),
      because,
      reason: "StoppingForRestart",
      wentDown: true,
    }),
  );
}

function startContainer(ctx: Ctx, view: ServerView, main: ObservedContainer): Decision {
  const backoff = backoffWait(ctx, "StartContainer", view.desired.name);
  if (backoff) return backoff;
  return act(ctx, view, {
    action: { kind: "StartContainer", server: view.desired.name, node: main.node, vmid: main.vmid },
    because: `CT ${main.vmid} is stopped and configured; bringing a server up is never gated`,
    reason: "StartingContainer",
  });
}

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
  const backoff = backoffWait(ctx, "StopContainer", name);
  if (backoff) return backoff;
  const because = `${name} has failed its health probe for over ${ctx.input.spec.rollout.healthGateTimeout} (${problem}); a restart may bring it back`;
  return gated(ctx, view, because, () =>
    act(ctx, view, { action: stop(ctx, name, main), because, reason: "RestartingUnhealthy", wentDown: true }),
  );
}

function stop(ctx: Ctx, server: string, c: ObservedContainer): Action {
  return {
    kind: "StopContainer",
    server,
    node: c.node,
    vmid: c.vmid,
    timeoutSeconds: ctx.t.stopTimeoutSeconds,
  };
}

/** A step that takes a serving server down: only through the peer gate. */
function gated(ctx: Ctx, view: ServerView, because: string, then: () => Decision): Decision {
  const verdict = gateFor(ctx, view);
  if (verdict.open) return then();
  const { rollout } = ctx.input.spec;
  const waiting = "WaitingForPeer";
  const since = sinceOf(ctx, view.desired.name, waiting);
  const overdue = ctx.now.getTime() - new Date(since).getTime() > durationMs(rollout.progressDeadline);
  const progress = {
    reason: verdict.reason === "RolloutPaused" ? "RolloutPaused" : "WaitingForPeer",
    message: `${because}; ${verdict.message}`,
  };
  return {
    kind: "wait",
    why: `waiting: ${because}; ${verdict.message}`,
    progress,
    retryMs: Math.min(verdict.retryAfterMs ?? ctx.t.gatePollMaxMs, ctx.t.gatePollMaxMs),
    server: view.desired.name,
    step: waiting,
    ...(overdue && verdict.reason !== "RolloutPaused"
      ? {
          stalled: {
            reason: "ProgressDeadlineExceeded",
            message: `${progress.message} (waiting since ${since}, longer than rollout.progressDeadline ${rollout.progressDeadline})`,
          },
        }
      : {}),
  };
}

function gateFor(ctx: Ctx, view: ServerView): GateVerdict {
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
    paused:
      ctx.input.spec.rollout.paused || ctx.input.meta.annotations["ldapgateway.io/paused"] !== undefined,
  });
}

/** Retry a failed action only after its backoff; Stalled after stallAfterAttempts failures in a row. */
function backoffWait(ctx: Ctx, action: string, server: string | undefined): Decision | undefined {
  const f = ctx.draft.lastFailure;
  if (!sameFailure(f, action, server)) return undefined;
  const delay = Math.min(ctx.t.backoffMaxMs, ctx.t.backoffBaseMs * 2 ** (f!.attempts - 1));
  const remaining = new Date(f!.time).getTime() + delay - ctx.now.getTime();
  if (remaining <= 0) return undefined;
  const why = {
    reason: f!.reason ?? `${action}Failed`,
    message: `${f!.message} (attempt ${f!.attempts}); retrying in ${seconds(remaining)}`,
  };
  return {
    kind: "wait",
    why: `waiting: ${why.message}`,
    progress: why,
    retryMs: remaining,
    ...(server ? { server } : {}),
    ...(f!.attempts >= ctx.t.stallAfterAttempts
      ? { stalled: { reason: why.reason, message: `${f!.message}: failed ${f!.attempts} times in a row` } }
      : {}),
  };
}

function wait(ctx: Ctx, view: ServerView, step: string, what: string, retryMs: number): Decision {
  return {
    kind: "wait",
    why: `waiting: ${what}`,
    progress: { reason: step === "Verify" ? "Verifying" : `Waiting${step}`, message: what },
    retryMs,
    server: view.desired.name,
    step,
  };
}

interface ActSpec {
  action: Action;
  because: string;
  reason: string;
  effect?: Effect;
  /** The action takes the server down: the settle time starts now. */
  wentDown?: boolean;
  /** The variables a ConfigureEnv writes. */
  envKeys?: string[];
}

function act(ctx: Ctx, view: ServerView | undefined, a: ActSpec): Decision {
  const description = describeAction(a.action);
  const server = view?.desired.name;
  const effect: Effect = (draft) => {
    a.effect?.(draft);
    if (server && (a.wentDown || a.envKeys))
      ctx.marks[server] = {
        ...(a.wentDown ? { wentDown: true } : {}),
        ...(a.envKeys ? { envKeys: a.envKeys } : {}),
      };
  };
  return {
    kind: "act",
    action: a.action,
    why: `next: ${description}, because ${a.because}`,
    event: {
      type: "Normal",
      reason: a.reason,
      action: a.action.kind,
      note: `${capitalize(description)}: ${a.because}`,
    },
    progress: { reason: a.reason, message: `${description}: ${a.because}` },
    ...(server ? { server, step: STEP_OF_ACTION[a.action.kind] } : {}),
    effect,
  };
}

const STEP_OF_ACTION: Partial<Record<Action["kind"], string>> = {
  PullImage: "PullImage",
  CreateContainer: "Create",
  ConfigureEnv: "Configure",
  UpdateInPlace: "UpdateInPlace",
  StartContainer: "Start",
  StopContainer: "Stop",
  DeleteContainer: "Remove",
};

// ---- the realm, node DNS, syncs ------------------------------------------------------

function realmDecision(ctx: Ctx): Decision {
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

function dnsDecision(ctx: Ctx): Decision {
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

function syncDecision(ctx: Ctx, servers: readonly Decision[]): Decision {
  const want = ctx.desired.realm;
  if (!want) return { kind: "done" };
  const reason = syncReason(ctx);
  if (!reason) return { kind: "done" };
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
  const rolling = servers.find((d) => "rollout" in d && d.rollout === true);
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

/** When this server entered its current rollout step: kept while the step lasts. */
function sinceOf(ctx: Ctx, server: string, step: string): string {
  const r = ctx.input.status.rollout;
  return r?.server === server && r.step === step && r.since ? r.since : ctx.stamp;
}

// ---- deletion ---------------------------------------------------------------

function planDeletion(input: PlanInput, t: PlanTimings): Plan {
  const base = { ...baseStatus(input), phase: "Deleting" as const };
  const deleting = (progress: Why): Assessment => ({ ready: undefined, progressing: progress });
  if (!input.meta.hasFinalizer)
    return finish({
      status: base,
      assessment: deleting({ reason: "Deleting", message: "deleting" }),
      events: [],
      requeueAfterMs: t.resyncMs,
      explanation: "deleting: the finalizer is gone, nothing left to do",
    });
  if (input.meta.annotations[DROP_FINALIZER_ANNOTATION] !== undefined)
    return finish({
      action: { kind: "RemoveFinalizer" },
      status: base,
      assessment: deleting({ reason: "FinalizerDropped", message: "dropping the finalizer on request" }),
      events: [
        {
          type: "Warning",
          reason: "FinalizerDropped",
          action: "RemoveFinalizer",
          note: `the annotation ${DROP_FINALIZER_ANNOTATION} drops the finalizer: containers, images, realm and node DNS are left in Proxmox as they are`,
        },
      ],
      requeueAfterMs: 1,
      explanation: `next: remove the finalizer, because the annotation ${DROP_FINALIZER_ANNOTATION} asks for it; nothing in Proxmox is touched`,
    });
  if (input.spec.deletionPolicy === "Retain") {
    const kept = [
      ...(input.status.servers ?? [])
        .filter((s) => s.vmid)
        .map((s) => `${s.name} (CT ${s.vmid} on ${s.node})`),
      ...(input.spec.realm.manage ? [`realm ${input.spec.realm.name}`] : []),
    ];
    return finish({
      action: { kind: "RemoveFinalizer" },
      status: base,
      assessment: deleting({ reason: "Retained", message: "deletionPolicy Retain" }),
      events: [
        {
          type: "Normal",
          reason: "Retained",
          action: "RemoveFinalizer",
          note: `deletionPolicy Retain: left in Proxmox: ${kept.length ? kept.join(", ") : "nothing was made"}, and the nodes' DNS as it is`,
        },
      ],
      requeueAfterMs: 1,
      explanation: "next: remove the finalizer, because deletionPolicy Retain keeps everything in Proxmox",
    });
  }
  const problem = input.observed.secrets.ok
    ? input.observed.proxmox.ok
      ? undefined
      : input.observed.proxmox.problem
    : input.observed.secrets.problem;
  if (problem) {
    const why = {
      reason: "DeletionBlocked",
      message: `cannot clean up before deletion: ${problem.message}; to delete the LdapPair and leave Proxmox as it is, annotate it with ${DROP_FINALIZER_ANNOTATION}=true`,
    };
    return finish({
      status: base,
      assessment: problem.transient ? deleting(why) : { ready: undefined, stalled: why },
      events: newProblemEvent(input, why),
      requeueAfterMs: problem.transient ? t.problemRetryMs : t.stalledRetryMs,
      explanation: `waiting: ${why.message}`,
    });
  }
  return deletionStep(input, t, base);
}

function deletionStep(input: PlanInput, t: PlanTimings, base: PlannedStatus): Plan {
  const ctx = context(input, t, input.desired ?? emptyDesired(input), base);
  const status = ctx.draft;
  const step = (action: Action | undefined, why: string, requeueAfterMs: number, effect?: Effect): Plan => {
    effect?.(status);
    return finish({
      ...(action ? { action } : {}),
      status,
      assessment: {
        ready: undefined,
        progressing: {
          reason: "Deleting",
          message: action ? `${describeAction(action)} before deletion` : why,
        },
      },
      events: [
        ...ctx.events,
        ...(action
          ? [
              {
                type: "Normal" as const,
                reason: "CleaningUp",
                action: action.kind,
                note: `${capitalize(describeAction(action))} before deletion`,
              },
            ]
          : []),
      ],
      requeueAfterMs,
      explanation: action
        ? `next: ${describeAction(action)}, because the LdapPair is deleted with deletionPolicy Delete`
        : why,
    });
  };
  const taskWait = taskDecision(ctx);
  if (taskWait?.kind === "wait") return step(undefined, taskWait.why, taskWait.retryMs);
  for (const server of input.observed.servers)
    for (const c of server.containers) {
      if (c.lock) return step(undefined, `waiting: CT ${c.vmid} is locked (${c.lock})`, t.taskPollMs);
      if (c.status === "running")
        return step(
          {
            kind: "StopContainer",
            server: server.name,
            node: c.node,
            vmid: c.vmid,
            timeoutSeconds: t.stopTimeoutSeconds,
          },
          "",
          t.taskPollMs,
        );
      return step(
        { kind: "DeleteContainer", server: server.name, node: c.node, vmid: c.vmid },
        "",
        t.taskPollMs,
      );
    }
  const elsewhere = input.observed.imagesInUseElsewhere;
  for (const image of status.images ?? []) {
    const listed = input.observed.images[image.node]?.includes(image.volid);
    if (listed && elsewhere && !elsewhere.includes(image.volid))
      return step(
        { kind: "DeleteImage", node: image.node, storage: image.volid.split(":")[0]!, volid: image.volid },
        "",
        t.taskPollMs,
      );
  }
  const realm = input.observed.realm;
  if (input.spec.realm.manage && realm?.config) {
    const manager = realm.managedBy ?? realmManagerOf(realm.config["comment"]);
    if (manager === input.meta.uid.toLowerCase() && realmOrigin(realm.config["comment"]) === "created")
      return step({ kind: "DeleteRealm", name: input.spec.realm.name }, "", 1);
  }
  for (const record of status.nodeDns ?? []) {
    const current = input.observed.nodeDns[record.node];
    if (!current) continue;
    if (!nodeDnsEqual(current, record.previous))
      return step(
        { kind: "SetNodeDns", node: record.node, dns: restoreDns(record.previous, current) },
        "",
        1,
      );
    return step(
      undefined,
      `the DNS of node ${record.node} is restored`,
      1,
      (s) => (s.nodeDns = (s.nodeDns ?? []).filter((r) => r.node !== record.node)),
    );
  }
  // A volume no longer listed on a listed node is gone; the others stay (in use elsewhere, or not listed).
  const kept = (status.images ?? []).filter((i) => input.observed.images[i.node]?.includes(i.volid) ?? true);
  status.images = kept;
  const left = kept.map((i) => i.volid);
  return finish({
    action: { kind: "RemoveFinalizer" },
    status,
    assessment: { ready: undefined, progressing: { reason: "Deleting", message: "cleaned up" } },
    events: [
      ...ctx.events,
      {
        type: "Normal",
        reason: "CleanedUp",
        action: "RemoveFinalizer",
        note: `containers, realm and node DNS cleaned up${left.length ? `; image volumes kept (in use or not listed): ${left.join(", ")}` : ""}`,
      },
    ],
    requeueAfterMs: 1,
    explanation: "next: remove the finalizer, because nothing of this LdapPair is left in Proxmox",
  });
}

function restoreDns(previous: NodeDns, current: NodeDns): NodeDns & { search: string } {
  const search = previous.search || current.search || "";
  return { ...previous, search };
}

/** Deletion of a pair whose Secret is gone still knows its servers' names from the spec. */
function emptyDesired(input: PlanInput): DesiredPair {
  return {
    servers: [],
    imageStorage: input.spec.proxmox.imageStorage,
    rootStorage: input.spec.proxmox.rootStorage,
    baseDn: "",
  };
}
