import { EventsV1Api, V1MicroTime, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { errorMessage } from "./errors.js";
import { initialBucket, tryTakeToken, type BucketPolicy, type BucketState } from "./ratelimit.js";
import type { KubeObject } from "./resource.js";

export type EventType = "Normal" | "Warning";

export interface EventSpec {
  type: EventType;
  /** CamelCase, why the action happened, e.g. "RealmSynced". */
  reason: string;
  /** What was done, e.g. "Sync". */
  action: string;
  note: string;
}

export interface EventSink {
  record(regarding: KubeObject, event: EventSpec): void;
}

export interface EventFilterOptions {
  /** An identical event within this window is suppressed. */
  dedupWindowMs?: number;
  /** Per-object budget, as client-go's spam filter: a burst, then a slow trickle. */
  perObject?: BucketPolicy;
  maxEntries?: number;
}

/**
 * Decides which events go out, keeping a reconcile loop that repeats the same
 * event from flooding the API. Time is an input so the window is testable.
 */
export class EventFilter {
  private readonly lastSent = new Map<string, number>();
  private readonly budgets = new Map<string, BucketState>();
  private readonly window: number;
  private readonly perObject: BucketPolicy;
  private readonly maxEntries: number;

  constructor(options: EventFilterOptions = {}) {
    this.window = options.dedupWindowMs ?? 10 * 60_000;
    this.perObject = options.perObject ?? { burst: 25, qps: 1 / 300 };
    this.maxEntries = options.maxEntries ?? 4096;
  }

  admit(regarding: KubeObject, event: EventSpec, now: number): boolean {
    const object = regarding.metadata.uid ?? `${regarding.metadata.namespace}/${regarding.metadata.name}`;
    const key = [object, event.type, event.reason, event.action, event.note].join("\u0000");
    const last = this.lastSent.get(key);
    if (last !== undefined && now - last < this.window) return false;
    const budget = tryTakeToken(
      this.budgets.get(object) ?? initialBucket(this.perObject, now),
      this.perObject,
      now,
    );
    this.remember(this.budgets, object, budget.state);
    if (!budget.allowed) return false;
    this.remember(this.lastSent, key, now);
    return true;
  }

  /** Bounded: the oldest entry goes first, so memory stays flat over a long run. */
  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > this.maxEntries) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
  }
}

export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  reportingController: string;
  reportingInstance: string;
  logger: Logger;
  filter?: EventFilter;
}

/** events.k8s.io/v1 events; failures are logged, never fail a reconcile. */
export class EventRecorder implements EventSink {
  private readonly api: EventsV1Api;
  private readonly filter: EventFilter;
  private pending = new Set<Promise<void>>();

  constructor(private readonly options: EventRecorderOptions) {
    this.api = options.kubeConfig.makeApiClient(EventsV1Api);
    this.filter = options.filter ?? new EventFilter();
  }

  record(regarding: KubeObject, event: EventSpec): void {
    if (!this.filter.admit(regarding, event, Date.now())) return;
    const sent = this.send(regarding, event).finally(() => this.pending.delete(sent));
    this.pending.add(sent);
  }

  /** Waits for events in flight, so a shutdown does not cut the last ones. */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private async send(regarding: KubeObject, event: EventSpec): Promise<void> {
    const namespace = regarding.metadata.namespace ?? "default";
    const now = new V1MicroTime();
    try {
      await this.api.createNamespacedEvent({
        namespace,
        body: {
          metadata: {
            name: `${regarding.metadata.name}.${now.getTime().toString(16)}${randomSuffix()}`,
            namespace,
          },
          eventTime: now,
          type: event.type,
          reason: event.reason,
          action: event.action,
          note: event.note.slice(0, 1024),
          reportingController: this.options.reportingController,
          reportingInstance: this.options.reportingInstance,
          regarding: {
            apiVersion: regarding.apiVersion,
            kind: regarding.kind,
            name: regarding.metadata.name,
            namespace,
            uid: regarding.metadata.uid,
            resourceVersion: regarding.metadata.resourceVersion,
          },
        },
      });
    } catch (err) {
      this.options.logger.warn("event not recorded", { reason: event.reason, error: errorMessage(err) });
    }
  }
}

function randomSuffix(): string {
  return Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, "0");
}
