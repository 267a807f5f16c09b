import { Watch } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { sleep, startTimer, unrefTimers, type Timer } from "./clock.js";
import { errorMessage, httpStatus } from "./errors.js";
import { backoffDelay, type BackoffPolicy } from "./ratelimit.js";
import { objectKey, type KubeObject, type ResourceClient } from "./resource.js";

export interface InformerHandlers {
  added(obj: KubeObject): void;
  updated(old: KubeObject, obj: KubeObject): void;
  deleted(obj: KubeObject): void;
  /** Periodic re-delivery of every cached object, so a missed event heals. */
  resync(obj: KubeObject): void;
}

export interface InformerOptions {
  resource: ResourceClient;
  /** Undefined watches all namespaces. */
  namespace: string | undefined;
  labelSelector?: string | undefined;
  logger: Logger;
  resyncPeriodMs?: number;
  /** Asked of the server, which then closes the watch; it also bounds the watchdog. */
  watchTimeoutSeconds?: number;
  /** Silence tolerated beyond the server-side timeout before the watch is deemed stalled. */
  watchdogGraceMs?: number;
  restartBackoff?: BackoffPolicy;
  /** Source of the restart jitter; a test can pin it. */
  random?: () => number;
}

/** A watch that delivered an event or stayed open this long proves the server healthy again. */
const healthyWatchMs = 5_000;

/** ±20% around the backoff delay, so informers that failed together do not retry in lockstep. */
export function jitteredDelay(delayMs: number, random: () => number = Math.random): number {
  return Math.round(delayMs * (0.8 + 0.4 * random()));
}

type WatchEnd = "closed" | "gone" | "stalled" | "stopped";

class WatchFailed extends Error {}

/**
 * List-then-watch with a cache. Unlike the client's informer, which stops for
 * good on any error but 410, this one restarts with backoff after every error
 * and restarts a watch that went silent.
 */
export class Informer {
  private readonly cache = new Map<string, KubeObject>();
  private readonly handlers: InformerHandlers[] = [];
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private resyncTimer: Timer | undefined;
  private synced = false;
  private lastResourceVersion = "";
  private restarts = 0;
  private eventCount = 0;
  private readonly random: () => number;
  private readonly opts: Required<Omit<InformerOptions, "labelSelector" | "namespace" | "random">> &
    Pick<InformerOptions, "labelSelector" | "namespace">;

  constructor(options: InformerOptions) {
    this.opts = {
      resyncPeriodMs: 10 * 60_000,
      watchTimeoutSeconds: 300,
      watchdogGraceMs: 30_000,
      restartBackoff: { baseDelayMs: 200, maxDelayMs: 30_000 },
      ...options,
    };
    this.random = options.random ?? Math.random;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** How many times the list+watch had to start over after an error or stall. */
  get restartCount(): number {
    return this.restarts;
  }

  get namespace(): string | undefined {
    return this.opts.namespace;
  }

  addHandlers(handlers: InformerHandlers): () => void {
    this.handlers.push(handlers);
    return () => {
      const i = this.handlers.indexOf(handlers);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  get(key: string): KubeObject | undefined {
    return this.cache.get(key);
  }

  list(): KubeObject[] {
    return [...this.cache.values()];
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  start(): void {
    if (this.running) return;
    this.running = this.run();
    this.scheduleResync();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.resyncTimer?.cancel();
    await this.running;
  }

  /** Re-armed after each resync rather than an interval, which Node cannot hold past ~24.8 days. */
  private scheduleResync(): void {
    if (this.abort.signal.aborted) return;
    this.resyncTimer = startTimer(
      () => {
        this.resyncAll();
        this.scheduleResync();
      },
      this.opts.resyncPeriodMs,
      unrefTimers,
    );
  }

  resyncAll(): void {
    for (const obj of this.cache.values()) this.emit((h) => h.resync(obj));
  }

  private async run(): Promise<void> {
    // Reset only by a healthy watch: a successful re-list alone says nothing of
    // a watch that keeps failing, and would restart it at the base delay forever.
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        await this.relist();
        await this.watchUntilGone(() => (failures = 0));
      } catch (err) {
        if (this.abort.signal.aborted) break;
        failures += 1;
        this.restarts += 1;
        const delay = jitteredDelay(backoffDelay(failures, this.opts.restartBackoff), this.random);
        this.opts.logger.warn("list/watch failed, restarting", {
          error: errorMessage(err),
          status: httpStatus(err),
          namespace: this.opts.namespace ?? "*",
          retryInMs: delay,
        });
        await sleep(delay, this.abort.signal);
      }
    }
  }

  /** Watches from the last seen version until the server says it is too old. */
  private async watchUntilGone(onHealthy: () => void): Promise<void> {
    for (;;) {
      const startedAt = Date.now();
      const before = this.eventCount;
      let end: WatchEnd;
      try {
        end = await this.watchOnce();
      } finally {
        if (this.eventCount > before || Date.now() - startedAt >= healthyWatchMs) onHealthy();
      }
      if (end === "stopped") return;
      // A server that accepts and at once closes watches would otherwise be hammered in a tight loop.
      if (end === "closed" && this.eventCount === before && Date.now() - startedAt < 1000) {
        throw new WatchFailed("watch closed immediately");
      }
      if (end === "gone") {
        this.opts.logger.info("watch expired (410), relisting", { namespace: this.opts.namespace ?? "*" });
        return;
      }
      if (end === "stalled") throw new WatchFailed("watch stalled: no event within the watchdog period");
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.opts.resource.list(
      this.opts.namespace,
      this.opts.labelSelector,
    );
    const seen = new Set<string>();
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      this.apply("ADDED", obj);
    }
    for (const [key, obj] of this.cache) {
      if (!seen.has(key)) this.apply("DELETED", obj);
    }
    this.lastResourceVersion = resourceVersion;
    this.synced = true;
  }

  private watchOnce(): Promise<WatchEnd> {
    // Stopped while listing: the abort event has fired already and would never reach this watch.
    if (this.abort.signal.aborted) return Promise.resolve("stopped");
    return new Promise<WatchEnd>((resolve, reject) => {
      let settled = false;
      let request: AbortController | undefined;
      const watchdogMs = this.opts.watchTimeoutSeconds * 1000 + this.opts.watchdogGraceMs;
      const finish = (end: WatchEnd | Error): void => {
        if (settled) return;
        settled = true;
        watchdog.cancel();
        this.abort.signal.removeEventListener("abort", onStop);
        request?.abort();
        if (end instanceof Error) reject(end);
        else resolve(end);
      };
      const onStop = (): void => finish("stopped");
      let watchdog = startTimer(() => finish("stalled"), watchdogMs);
      const alive = (): void => {
        watchdog.cancel();
        watchdog = startTimer(() => finish("stalled"), watchdogMs);
      };
      this.abort.signal.addEventListener("abort", onStop, { once: true });
      const params = {
        resourceVersion: this.lastResourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.opts.watchTimeoutSeconds,
        labelSelector: this.opts.labelSelector,
      };
      const path = this.opts.resource.collectionPath(this.opts.namespace);
      new Watch(this.opts.resource.kubeConfig)
        .watch(
          path,
          params,
          (phase, obj: KubeObject & { code?: number; message?: string }) => {
            if (settled) return;
            // An ERROR event is the server refusing, not a sign of a working watch.
            if (phase !== "ERROR") this.eventCount += 1;
            alive();
            const end = this.onWatchEvent(phase, obj);
            if (end) finish(end);
          },
          (err: unknown) => {
            if (!err) return finish("closed");
            if (httpStatus(err) === 410) return finish("gone");
            finish(err instanceof Error ? err : new WatchFailed(String(err)));
          },
        )
        .then((controller) => {
          request = controller;
          if (settled) controller.abort();
        }, finish);
    });
  }

  private onWatchEvent(
    phase: string,
    obj: KubeObject & { code?: number; message?: string },
  ): WatchEnd | Error | undefined {
    switch (phase) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED":
        this.apply(phase, obj);
        this.lastResourceVersion = obj.metadata.resourceVersion ?? this.lastResourceVersion;
        return undefined;
      case "BOOKMARK":
        this.lastResourceVersion = obj.metadata.resourceVersion ?? this.lastResourceVersion;
        return undefined;
      case "ERROR":
        if (obj.code === 410) return "gone";
        return new WatchFailed(`watch error ${obj.code ?? "?"}: ${obj.message ?? ""}`);
      default:
        return undefined;
    }
  }

  private apply(phase: "ADDED" | "MODIFIED" | "DELETED", obj: KubeObject): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (phase === "DELETED") {
      if (!old) return;
      this.cache.delete(key);
      this.emit((h) => h.deleted(obj));
      return;
    }
    this.cache.set(key, obj);
    if (!old) this.emit((h) => h.added(obj));
    else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion)
      this.emit((h) => h.updated(old, obj));
  }

  private emit(call: (h: InformerHandlers) => void): void {
    for (const h of this.handlers) {
      try {
        call(h);
      } catch (err) {
        this.opts.logger.error("informer handler failed", { error: err });
      }
    }
  }
}

/** What a controller needs of a cache. */
export interface ObjectCache {
  readonly hasSynced: boolean;
  get(key: string): KubeObject | undefined;
  keys(): string[];
  addHandlers(handlers: InformerHandlers): () => void;
}

/** Several informers (one per watched namespace) seen as one cache. */
export class InformerSet implements ObjectCache {
  constructor(readonly informers: readonly Informer[]) {}

  get hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced);
  }

  get(key: string): KubeObject | undefined {
    for (const i of this.informers) {
      const obj = i.get(key);
      if (obj) return obj;
    }
    return undefined;
  }

  keys(): string[] {
    return this.informers.flatMap((i) => i.keys());
  }

  addHandlers(handlers: InformerHandlers): () => void {
    const removers = this.informers.map((i) => i.addHandlers(handlers));
    return () => removers.forEach((remove) => remove());
  }

  start(): void {
    this.informers.forEach((i) => i.start());
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
