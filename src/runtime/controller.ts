import { randomUUID } from "node:crypto";
import type { Logger } from "winston";
import type { OperatorMetrics, ReconcileResult as ResultLabel } from "../observability/metrics.js";
import { sleep } from "./clock.js";
import { isPanic, isTerminal } from "./errors.js";
import type { EventSink } from "./events.js";
import type { ObjectCache } from "./informer.js";
import { objectKey, type KubeObject, type ResourceClient } from "./resource.js";
import type { StatusWriter } from "./status.js";
import { WorkQueue } from "./workqueue.js";

export interface ReconcileContext {
  /** Carries controller, key and reconcileID on every line. */
  logger: Logger;
  reconcileId: string;
  /** Aborted when the shutdown grace period runs out, and at once when leadership is lost. */
  signal: AbortSignal;
  status: StatusWriter;
  events: EventSink;
  resource: ResourceClient;
  /** Keeps a value read from a Secret out of every log line from now on. */
  registerSecret(value: string | undefined): void;
}

export type ReconcileResult = { requeueAfter?: number } | void;

/**
 * Level-triggered: called with the key and a deep copy of the cached object
 * (undefined once deleted), which the reconciler may change freely. Return
 * `requeueAfter` to be called again later; throw to be retried with backoff,
 * or throw a TerminalError to skip the retry (the periodic resync still runs
 * the key again).
 */
export type Reconciler = (
  key: string,
  obj: KubeObject | undefined,
  ctx: ReconcileContext,
) => Promise<ReconcileResult>;

export interface ControllerOptions {
  name: string;
  cache: ObjectCache;
  reconcile: Reconciler;
  resource: ResourceClient;
  status: StatusWriter;
  events: EventSink;
  logger: Logger;
  metrics?: OperatorMetrics;
  workers?: number;
  queue?: WorkQueue;
  /** A reconcile running longer than this makes /healthz fail. */
  stuckAfterMs?: number;
  registerSecret?: (value: string | undefined) => void;
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly workers: number;
  private readonly running = new Map<string, number>();
  private readonly abort = new AbortController();
  private unsubscribe: (() => void) | undefined;
  private workerLoops: Promise<void>[] = [];

  constructor(private readonly options: ControllerOptions) {
    this.workers = Math.max(1, options.workers ?? 1);
    this.queue = options.queue ?? new WorkQueue({ observer: options.metrics?.queueObserver(options.name) });
    options.metrics?.trackInProgress(options.name, () => this.queue.unfinishedWork());
  }

  /** Starts the workers; called once this instance leads. */
  start(): void {
    if (this.unsubscribe) return;
    const enqueue = (obj: KubeObject): void => this.queue.add(objectKey(obj));
    this.unsubscribe = this.options.cache.addHandlers({
      added: enqueue,
      updated: (_old, obj) => enqueue(obj),
      deleted: enqueue,
      resync: enqueue,
    });
    // Objects cached before leadership was won get their first reconcile now.
    for (const key of this.options.cache.keys()) this.queue.add(key);
    this.options.metrics?.controllerStarted(this.options.name, this.workers);
    this.workerLoops = Array.from({ length: this.workers }, () => this.work());
    this.options.logger.info("controller started", { controller: this.options.name, workers: this.workers });
  }

  /**
   * Takes no new work, lets running reconciles finish within `graceMs`, then
   * aborts their signal. `cutShort` (leadership lost) ends the grace period
   * whenever it fires, before or during it: another replica may lead by then.
   * Resolves true when everything finished in time.
   */
  async stop(graceMs: number, cutShort?: AbortSignal): Promise<boolean> {
    this.unsubscribe?.();
    this.queue.shutDown();
    const grace = new AbortController();
    const endGrace = (): void => {
      this.abort.abort();
      grace.abort();
    };
    if (graceMs <= 0 || cutShort?.aborted) endGrace();
    cutShort?.addEventListener("abort", endGrace, { once: true });
    const finished = await Promise.race([
      Promise.all(this.workerLoops).then(() => true),
      sleep(graceMs, grace.signal).then(() => false),
    ]);
    cutShort?.removeEventListener("abort", endGrace);
    endGrace();
    if (!finished) {
      this.options.logger.warn("shutdown grace period over, reconciles still running", {
        controller: this.options.name,
        keys: [...this.running.keys()],
      });
    }
    return finished;
  }

  /** False with a reason when a reconcile has been running for too long. */
  healthy(now: number = Date.now()): true | string {
    const limit = this.options.stuckAfterMs ?? 10 * 60_000;
    for (const [key, startedAt] of this.running) {
      if (now - startedAt > limit)
        return `reconcile of ${key} running for ${Math.round((now - startedAt) / 1000)}s`;
    }
    return true;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const { name, metrics } = this.options;
    const reconcileId = randomUUID();
    const logger = this.options.logger.child({ controller: name, key, reconcileID: reconcileId });
    const ctx: ReconcileContext = {
      logger,
      reconcileId,
      signal: this.abort.signal,
      status: this.options.status,
      events: this.options.events,
      resource: this.options.resource,
      registerSecret: this.options.registerSecret ?? (() => undefined),
    };
    const startedAt = Date.now();
    this.running.set(key, startedAt);
    metrics?.activeWorkers.inc({ controller: name });
    let result: ResultLabel;
    try {
      // A copy: a reconciler that edits its object must not change what the cache (and every later reconcile) sees.
      const obj = structuredClone(this.options.cache.get(key));
      result = this.settle(key, await this.options.reconcile(key, obj, ctx));
    } catch (err) {
      result = this.fail(key, err, logger);
    } finally {
      this.running.delete(key);
      metrics?.activeWorkers.dec({ controller: name });
      metrics?.reconcileTime.observe({ controller: name }, (Date.now() - startedAt) / 1000);
    }
    metrics?.reconcileTotal.inc({ controller: name, result });
  }

  private settle(key: string, outcome: ReconcileResult): ResultLabel {
    this.queue.forget(key);
    const after = outcome?.requeueAfter;
    if (after !== undefined && after > 0) {
      this.queue.addAfter(key, after);
      return "requeue_after";
    }
    return "success";
  }

  private fail(key: string, err: unknown, logger: Logger): ResultLabel {
    const { name, metrics } = this.options;
    metrics?.reconcileErrors.inc({ controller: name });
    if (isPanic(err)) {
      // Retried like any error, as controller-runtime does with a recovered panic, but counted apart.
      metrics?.reconcilePanics.inc({ controller: name });
      this.queue.addRateLimited(key);
      logger.error("reconcile panicked, will retry", { error: err, retries: this.queue.retries(key) });
      return "error";
    }
    if (isTerminal(err)) {
      // No backoff retry: a change to the object, or the periodic resync, brings the key back.
      this.queue.forget(key);
      metrics?.terminalErrors.inc({ controller: name });
      logger.error("reconcile failed terminally", { error: err });
      return "error";
    }
    this.queue.addRateLimited(key);
    logger.error("reconcile failed, will retry", { error: err, retries: this.queue.retries(key) });
    return "error";
  }
}
