import { EventsV1Api, V1MicroTime, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { redactor as defaultRedactor, type Redactor } from "../observability/redact.js";
import { BoundedMap } from "./boundedmap.js";
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
  /**
   * Budget per object and reason, as client-go's spam filter (a burst, then a
   * slow trickle), but kept per reason: a loop repeating one reason with
   * changing notes is capped, while a rollout's many one-off events (each
   * step, a failed health gate, the clean-up) all go out.
   */
  perObject?: BucketPolicy;
  maxEntries?: number;
}

/**
 * Decides which events go out, keeping a reconcile loop that repeats the same
 * event from flooding the API. Time is an input so the window is testable.
 */
export class EventFilter {
  private readonly lastSent: BoundedMap<string, number>;
  private readonly budgets: BoundedMap<string, BucketState>;
  private readonly window: number;
  private readonly perObject: BucketPolicy;

  constructor(options: EventFilterOptions = {}) {
    this.window = options.dedupWindowMs ?? 10 * 60_000;
    this.perObject = options.perObject ?? { burst: 25, qps: 1 / 300 };
    const maxEntries = options.maxEntries ?? 4096;
    this.lastSent = new BoundedMap(maxEntries);
    this.budgets = new BoundedMap(maxEntries);
  }

  admit(regarding: KubeObject, event: EventSpec, now: number): boolean {
    const object = regarding.metadata.uid ?? `${regarding.metadata.namespace}/${regarding.metadata.name}`;
    const key = [object, event.type, event.reason, event.action, event.note].join("\u0000");
    const last = this.lastSent.get(key);
    if (last !== undefined && now - last < this.window) return false;
    const bucket = [object, event.type, event.reason].join("\u0000");
    const budget = tryTakeToken(
      this.budgets.get(bucket) ?? initialBucket(this.perObject, now),
      this.perObject,
      now,
    );
    this.budgets.set(bucket, budget.state);
    if (!budget.allowed) return false;
    this.lastSent.set(key, now);
    return true;
  }
}

export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  reportingController: string;
  reportingInstance: string;
  logger: Logger;
  filter?: EventFilter;
  /** Notes often quote an error; what it would leak must not reach `kubectl describe`. */
  redactor?: Redactor;
  /** The API the events go to; built from `kubeConfig` unless a test stands in. */
  api?: Pick<EventsV1Api, "createNamespacedEvent">;
}

/** events.k8s.io/v1 events; failures are logged, never fail a reconcile. */
export class EventRecorder implements EventSink {
  private readonly api: Pick<EventsV1Api, "createNamespacedEvent">;
  private readonly filter: EventFilter;
  private readonly redactor: Redactor;
  private pending = new Set<Promise<void>>();

  constructor(private readonly options: EventRecorderOptions) {
    this.api = options.api ?? options.kubeConfig.makeApiClient(EventsV1Api);
    this.filter = options.filter ?? new EventFilter();
    this.redactor = options.redactor ?? defaultRedactor;
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
            name: eventName(regarding.metadata.name, now.getTime()),
            namespace,
          },
          eventTime: now,
          type: event.type,
          reason: event.reason,
          action: event.action,
          note: truncateUtf8(this.redactor.redactText(event.note), maxNoteBytes),
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

/** The API server's limit on an event note, which it counts in bytes, not characters. */
const maxNoteBytes = 1024;

/** The longest prefix of `text` that is at most `maxBytes` of UTF-8, never splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  // for...of walks code points, so a surrogate pair is kept or dropped whole.
  for (const char of text) {
    bytes += Buffer.byteLength(char, "utf8");
    if (bytes > maxBytes) break;
    end += char.length;
  }
  return text.slice(0, end);
}

/** Longest object name: a DNS subdomain. */
const maxNameLength = 253;

/** `<object name>.<hex time><random>`, the object name cut so the whole stays a valid name. */
export function eventName(objectName: string, timeMs: number): string {
  const suffix = `.${timeMs.toString(16)}${randomSuffix()}`;
  const head = objectName.slice(0, maxNameLength - suffix.length).replace(/[-.]+$/, "");
  return `${head}${suffix}`;
}

function randomSuffix(): string {
  return Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, "0");
}
