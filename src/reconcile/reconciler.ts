// The LdapPair reconciler: observe -> plan -> act -> report, one action per
// reconcile, then requeue. The planner (plan.ts) decides; this file only
// wires the shell around it:
// - the LdapPair is read from the API server at the start, so the plan never
//   rests on a cached status that lags behind the task the last reconcile
//   recorded (and act() reads it again before a non-idempotent call);
// - the status is the plan's, with the task act() started folded in, written
//   through the runtime's status writer (nothing when nothing changed);
// - one event per plan event and per action taken; the plan's explanation
//   goes to the log;
// - the shared inventory enqueues the pair when one of its containers
//   changes, and polls faster while the pair has work in flight;
// - a task in flight is watched by its status alone between reconciles
//   (task-watch.ts), so the step after it starts as soon as it ends rather
//   than at the next task poll.
import type { LdapPair } from "../api/ldappair.js";
import type { PreflightOptions } from "../health/preflight.js";
import type { ProbeTimeouts } from "../health/probe-plan.js";
import { apiSecretReader, type SecretReader } from "../kube/secrets.js";
import { InventoryRegistry, type InventoryOptions } from "../proxmox/inventory.js";
import type { RetryPolicy } from "../proxmox/retry.js";
import type { ReconcileContext, Reconciler } from "../runtime/controller.js";
import { httpStatus } from "../runtime/errors.js";
import { splitKey, type KubeObject } from "../runtime/resource.js";
import { act, type ActOutcome } from "./act.js";
import { ClientPool } from "./clients.js";
import { desiredPair } from "./desired.js";
import { pairMeta } from "./meta.js";
import {
  DEFAULT_TIMINGS,
  describeAction,
  type DesiredPair,
  type Observation,
  type PairMeta,
  type PlanInput,
  type PlanTimings,
  type Problem,
} from "./model.js";
import { observe, type Observed } from "./observe.js";
import { plan as planPair } from "./plan.js";
import { report } from "./report.js";
import { TaskWatches } from "./task-watch.js";
import { InventoryWatches, type Enqueue } from "./watch.js";

export interface LdapPairReconcilerOptions {
  /** The shared inventory poll: interval, busy interval, poll timeout. */
  inventory?: Omit<InventoryOptions, "clock" | "onListenerError">;
  probeTimeouts?: Partial<ProbeTimeouts>;
  /** LDAPS port of the gateways (636). */
  probePort?: number;
  preflight?: PreflightOptions;
  /** Multiplies every delay of the planner (tests run a site's timings faster); default 1. */
  timeScale?: number;
  /** Overrides of single timings, after the scale. */
  timings?: Partial<PlanTimings>;
  /**
   * Between two reads of a running task's status by the light watch (default
   * DEFAULT_TASK_WATCH_MS, after the scale). A read is one GET; the full look
   * stays at taskPollMs.
   */
  taskWatchMs?: number;
  /** Per Proxmox request (default 20 s). */
  proxmoxTimeoutMs?: number;
  proxmoxRetry?: Partial<RetryPolicy>;
  /** Default: GET through the reconcile's kube config. */
  readSecret?: SecretReader;
  now?: () => Date;
}

/** How often a running task's status is read between reconciles, at a real site. */
export const DEFAULT_TASK_WATCH_MS = 200;

/** DEFAULT_TIMINGS with every delay multiplied by `scale` (counts and the stop timeout keep a floor). */
export function scaledTimings(scale: number, overrides: Partial<PlanTimings> = {}): PlanTimings {
  const ms = (v: number) => Math.max(1, Math.round(v * scale));
  const d = DEFAULT_TIMINGS;
  return {
    ...d,
    taskPollMs: ms(d.taskPollMs),
    verifyPollMs: ms(d.verifyPollMs),
    gatePollMaxMs: ms(d.gatePollMaxMs),
    resyncMs: ms(d.resyncMs),
    problemRetryMs: ms(d.problemRetryMs),
    stalledRetryMs: ms(d.stalledRetryMs),
    backoffBaseMs: ms(d.backoffBaseMs),
    backoffMaxMs: ms(d.backoffMaxMs),
    // Proxmox counts the shutdown timeout in whole seconds.
    stopTimeoutSeconds: Math.max(1, Math.round(d.stopTimeoutSeconds * scale)),
    ...overrides,
  };
}

export class LdapPairReconciler {
  readonly reconcile: Reconciler;
  private readonly clients: ClientPool;
  private readonly inventory: InventoryRegistry;
  private readonly watches: InventoryWatches;
  private readonly tasks: TaskWatches;
  private readonly timings: PlanTimings;
  private readonly now: () => Date;
  /** Per pair: the inventory must have been listed after this (see observe.ts). */
  private readonly freshness = new Map<string, { notBefore: number }>();
  private secretReader: SecretReader | undefined;

  constructor(private readonly options: LdapPairReconcilerOptions = {}) {
    this.now = options.now ?? (() => new Date());
    this.timings = scaledTimings(options.timeScale ?? 1, options.timings);
    this.clients = new ClientPool({
      ...(options.proxmoxTimeoutMs !== undefined ? { timeoutMs: options.proxmoxTimeoutMs } : {}),
      ...(options.proxmoxRetry ? { retry: options.proxmoxRetry } : {}),
    });
    this.inventory = new InventoryRegistry(options.inventory);
    this.watches = new InventoryWatches(this.inventory, {
      firstSnapshotTimeoutMs: options.inventory?.pollTimeoutMs ?? 30_000,
    });
    const scale = options.timeScale ?? 1;
    this.tasks = new TaskWatches({
      intervalMs: options.taskWatchMs ?? Math.max(10, Math.round(DEFAULT_TASK_WATCH_MS * scale)),
    });
    this.reconcile = (key, obj, ctx) => this.run(key, obj, ctx);
  }

  /** Where an inventory change sends a pair's key: the controller's queue. */
  bindQueue(enqueue: Enqueue): void {
    this.watches.setEnqueue(enqueue);
    this.tasks.setEnqueue(enqueue);
  }

  /** Stops the inventory polls and closes every Proxmox client (shutdown). */
  close(): void {
    this.tasks.close();
    this.watches.close();
    this.inventory.close();
    this.clients.close();
  }

  private forget(key: string): void {
    this.tasks.unwatch(key);
    this.watches.unwatch(key);
    this.clients.release(key);
    this.freshness.delete(key);
  }

  private async run(key: string, cached: KubeObject | undefined, ctx: ReconcileContext) {
    const t0 = Date.now();
    const pair = cached ? await this.fresh(key, ctx) : undefined;
    if (!pair) return void this.forget(key);
    const meta = pairMeta(pair);
    const freshness = this.freshness.get(key) ?? { notBefore: 0 };
    this.freshness.set(key, freshness);
    const observed = await observe(
      {
        clients: this.clients,
        watches: this.watches,
        readSecret: (this.secretReader ??=
          this.options.readSecret ?? apiSecretReader(ctx.resource.kubeConfig)),
        ...(this.options.probeTimeouts ? { probeTimeouts: this.options.probeTimeouts } : {}),
        ...(this.options.probePort !== undefined ? { probePort: this.options.probePort } : {}),
        ...(this.options.preflight ? { preflight: this.options.preflight } : {}),
      },
      {
        key,
        pair,
        meta,
        freshness,
        pairs: ctx.resource,
        registerSecret: (v) => ctx.registerSecret(v),
        signal: ctx.signal,
      },
    );
    const { observation, desired } = withDesired(pair, meta, observed);
    const input: PlanInput = {
      now: this.now(),
      meta,
      spec: pair.spec,
      status: pair.status ?? {},
      observed: observation,
      ...(desired ? { desired } : {}),
      timings: this.timings,
    };
    const plan = planPair(input);
    const t1 = Date.now();
    const outcome = plan.action
      ? await act(plan.action, {
          pair,
          ...(observed.client ? { client: observed.client } : {}),
          resource: ctx.resource,
          signal: ctx.signal,
        })
      : undefined;
    const t2 = Date.now();
    if (outcome?.result === "unknown") freshness.notBefore = t2;
    const written = report(input, plan, outcome, this.timings);
    const target =
      outcome?.result === "done" && outcome.pair ? outcome.pair : (pair as unknown as KubeObject);
    const gone = plan.action?.kind === "RemoveFinalizer" && outcome?.result === "done";
    if (written.fields && !gone)
      await ctx.status.update(target, { fields: written.fields, conditions: written.conditions });
    for (const e of written.events) ctx.events.record(target, e);
    if (!gone) this.followTask(key, written.fields, observed);
    const busy = !!written.fields?.["task"] || written.requeueAfterMs <= this.timings.gatePollMaxMs;
    observed.watch?.setBusy(busy);
    this.log(ctx, {
      explanation: plan.explanation,
      action: plan.action ? describeAction(plan.action) : undefined,
      outcome,
      summary: written.summary,
      readProblems: observation.readProblems ?? [],
      // Where a reconcile's time goes: the step after a task waits for all of it.
      ms: { observe: t1 - t0, act: t2 - t1, write: Date.now() - t2 },
    });
    if (gone) return void this.forget(key);
    // 0 asks for no requeue; the change just made (a finalizer) comes back through the watch anyway.
    return { requeueAfter: Math.max(1, written.requeueAfterMs) };
  }

  /** Watches the task the status now records; a status written without one ends the watch. */
  private followTask(key: string, fields: Record<string, unknown> | undefined, observed: Observed): void {
    // Nothing written: the plan rested on a stale view, and the status is what it was.
    if (!fields) return;
    const upid = (fields["task"] as { upid?: unknown } | undefined)?.upid;
    if (typeof upid === "string" && observed.client) this.tasks.watch(key, observed.client.client, upid);
    else this.tasks.unwatch(key);
  }

  /** The LdapPair as the API server has it now; undefined once it is gone. */
  private async fresh(key: string, ctx: ReconcileContext): Promise<LdapPair | undefined> {
    const { namespace, name } = splitKey(key);
    try {
      return (await ctx.resource.get(namespace ?? "", name)) as unknown as LdapPair;
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  }

  private log(
    ctx: ReconcileContext,
    r: {
      explanation: string;
      action: string | undefined;
      outcome: ActOutcome | undefined;
      summary: string;
      readProblems: readonly Problem[];
      ms: { observe: number; act: number; write: number };
    },
  ): void {
    const fields = {
      explanation: r.explanation,
      ms: r.ms,
      ...(r.action ? { action: r.action, outcome: r.outcome?.result } : {}),
      // What could not be read is said here at least, whatever the plan makes of it.
      ...(r.readProblems.length
        ? { readProblems: r.readProblems.map((p) => `${p.reason}: ${p.message}`) }
        : {}),
    };
    const failed = r.outcome?.result === "failed" || r.outcome?.result === "unknown";
    if (failed || r.readProblems.length)
      ctx.logger.warn(r.action ? r.summary : "reconciled with reads that failed", fields);
    else if (!r.action) ctx.logger.debug("reconciled: nothing to do now", fields);
    else ctx.logger.info(r.summary, fields);
  }
}

/**
 * The desired pair from the spec and the database URI. A value that cannot
 * work (a malformed URI, an env value Proxmox refuses) stalls the pair like an
 * unreadable Secret: nothing is created from it.
 */
function withDesired(
  pair: LdapPair,
  meta: PairMeta,
  observed: Observed,
): { observation: Observation; desired?: DesiredPair } {
  if (!observed.secrets) return { observation: observed.observation };
  const result = desiredPair(pair.spec, meta, { sqlUri: observed.secrets.sqlUri });
  if (result.ok) return { observation: observed.observation, desired: result.pair };
  return { observation: { ...observed.observation, secrets: { ok: false, problem: result.problem } } };
}

/** The reconciler for runOperator, and the hook that lets the inventory enqueue pairs. */
export function ldapPairReconciler(options: LdapPairReconcilerOptions = {}): LdapPairReconciler {
  return new LdapPairReconciler(options);
}
