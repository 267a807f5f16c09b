// One inventory poll per Proxmox endpoint, shared by every LdapPair on it.
// `GET /cluster/resources?type=vm` lists every guest of the cluster in one
// call, so a stopped, vanished, moved, locked or re-tagged container is seen
// within one interval for every pair at the cost of one call per endpoint,
// however many pairs there are (a per-pair `status/current` poll would cost
// two calls per pair per interval).
//
// The functional core is `diffInventory`; the poller around it owns only the
// timing: an interval (faster while any pair has work in flight), no
// overlapping polls, a bound on each poll, and the last good snapshot kept
// through failures.
import { systemClock, type Clock } from "../runtime/clock.js";
import { tagsEqual } from "./tags.js";
import type { ClusterResource } from "./types.js";

/** A Proxmox API as seen by one token: two tokens may see different guests. */
export interface Endpoint {
  url: string;
  tokenId: string;
}

/** Fetches `/cluster/resources?type=vm` (the client's clusterResources); must honour the signal. */
export type InventoryLister = (signal: AbortSignal) => Promise<ClusterResource[]>;

export interface InventorySnapshot {
  /** Clock time at which the poll that produced it ended. */
  takenAt: number;
  /** Every guest the token sees, by vmid. */
  containers: ReadonlyMap<number, ClusterResource>;
}

/** The fields of an entry whose change a pair cares about. */
export const WATCHED_FIELDS = ["type", "name", "node", "status", "lock", "tags"] as const;
export type WatchedField = (typeof WATCHED_FIELDS)[number];

export type ContainerChange =
  | { kind: "added"; vmid: number; after: ClusterResource }
  | { kind: "removed"; vmid: number; before: ClusterResource }
  | {
      kind: "changed";
      vmid: number;
      fields: WatchedField[];
      before: ClusterResource;
      after: ClusterResource;
    };

export type InventoryEvent =
  /**
   * A poll that found changes, or the first poll (`first`: every guest is
   * `added`), or the first good poll after failures (`recovered`, changes
   * counted against the snapshot kept through them).
   */
  | {
      type: "snapshot";
      snapshot: InventorySnapshot;
      changes: ContainerChange[];
      first: boolean;
      recovered: boolean;
    }
  /** A poll failed; `snapshot` is the last good one, now stale. The next tick tries again. */
  | { type: "error"; error: InventoryPollError; snapshot: InventorySnapshot | undefined };

export type InventoryListener = (event: InventoryEvent) => void;

export interface InventorySubscription {
  unsubscribe(): void;
  /** Work in flight for this pair: poll at the busy interval while any pair on the endpoint is busy. */
  setBusy(busy: boolean): void;
  /** The last good snapshot, or undefined before the first good poll. */
  snapshot(): InventorySnapshot | undefined;
  /** The error of the last poll, or undefined when it succeeded. */
  lastError(): InventoryPollError | undefined;
}

export interface InventoryOptions {
  clock?: Clock;
  /** Default 10 s. */
  intervalMs?: number;
  /** While any pair on the endpoint is busy; default 2 s. */
  busyIntervalMs?: number;
  /** A poll that takes longer is abandoned and reported as failed; default 30 s. */
  pollTimeoutMs?: number;
  /** Called when a listener throws; the other listeners are still told. */
  onListenerError?: (error: unknown) => void;
}

/** A failed poll of one endpoint. Names the endpoint and token id, never a secret. */
export class InventoryPollError extends Error {
  override name = "InventoryPollError";

  constructor(
    readonly endpoint: Endpoint,
    /** Failed polls in a row, this one included. */
    readonly failures: number,
    /** Clock time of the first of them. */
    readonly failingSince: number,
    readonly timedOut: boolean,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      `inventory poll of ${endpoint.url} as ${endpoint.tokenId} failed` +
        `${failures > 1 ? ` (${failures} in a row)` : ""}: ${why}`,
      { cause },
    );
  }
}

// ---- the pure core --------------------------------------------------------

function fieldChanged(field: WatchedField, a: ClusterResource, b: ClusterResource): boolean {
  // Proxmox re-sorts tags and a cluster's tag-style may keep their case: compare as sets.
  if (field === "tags") return !tagsEqual(a.tags, b.tags);
  // An absent lock and an empty one both mean "not locked".
  return (a[field] ?? "") !== (b[field] ?? "");
}

/** What changed from one snapshot to the next, by vmid (ascending). No previous snapshot: all added. */
export function diffInventory(
  before: ReadonlyMap<number, ClusterResource> | undefined,
  after: ReadonlyMap<number, ClusterResource>,
): ContainerChange[] {
  const changes: ContainerChange[] = [];
  for (const [vmid, now] of after) {
    const was = before?.get(vmid);
    if (!was) {
      changes.push({ kind: "added", vmid, after: now });
      continue;
    }
    const fields = WATCHED_FIELDS.filter((f) => fieldChanged(f, was, now));
    if (fields.length > 0) changes.push({ kind: "changed", vmid, fields, before: was, after: now });
  }
  for (const [vmid, was] of before ?? [])
    if (!after.has(vmid)) changes.push({ kind: "removed", vmid, before: was });
  return changes.sort((a, b) => a.vmid - b.vmid);
}

/** The guests of a listing by vmid; entries without a usable vmid are not guests. */
export function indexResources(resources: readonly ClusterResource[]): Map<number, ClusterResource> {
  const byVmid = new Map<number, ClusterResource>();
  for (const r of resources) {
    const vmid = Number(r.vmid);
    if (Number.isInteger(vmid) && vmid > 0) byVmid.set(vmid, { ...r, vmid });
  }
  return byVmid;
}

/** One poller per URL (scheme, host, port, path; case and trailing slashes aside) and token id. */
export function endpointKey(endpoint: Endpoint): string {
  let url = endpoint.url.trim();
  try {
    const u = new URL(url);
    url = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "").replace(/\/api2\/json$/, "")}`;
  } catch {
    // Not a URL: the client will refuse it; key it as written.
  }
  return `${url} ${endpoint.tokenId}`;
}

// ---- the shell ----------------------------------------------------------

interface Subscriber {
  lister: InventoryLister;
  listener: InventoryListener;
  busy: boolean;
}

interface Settings {
  clock: Clock;
  intervalMs: number;
  busyIntervalMs: number;
  pollTimeoutMs: number;
  onListenerError: (error: unknown) => void;
}

class EndpointPoller {
  private readonly subscribers = new Map<symbol, Subscriber>();
  private current: InventorySnapshot | undefined;
  private error: InventoryPollError | undefined;
  private failures = 0;
  private failingSince = 0;
  private timer: unknown;
  private inFlight: AbortController | undefined;
  /** Bounds the poll in flight. */
  private deadline: unknown;
  private lastStart: number | undefined;
  private stopped = false;

  constructor(
    readonly endpoint: Endpoint,
    private readonly settings: Settings,
    private readonly onEmpty: () => void,
  ) {}

  add(lister: InventoryLister, listener: InventoryListener): InventorySubscription {
    const id = Symbol("subscriber");
    this.subscribers.set(id, { lister, listener, busy: false });
    // The first subscriber starts the poller: its first poll runs at once.
    if (this.subscribers.size === 1) this.schedule();
    return {
      unsubscribe: () => this.remove(id),
      setBusy: (busy) => this.setBusy(id, busy),
      snapshot: () => this.current,
      lastError: () => this.error,
    };
  }

  stop(): void {
    this.stopped = true;
    this.settings.clock.clearTimeout(this.timer);
    this.settings.clock.clearTimeout(this.deadline);
    this.inFlight?.abort(new Error("inventory poll stopped: no LdapPair uses this endpoint"));
    this.inFlight = undefined;
  }

  private remove(id: symbol): void {
    if (!this.subscribers.delete(id)) return;
    if (this.subscribers.size === 0) this.onEmpty();
    // The busy interval may have been this pair's alone.
    else this.schedule();
  }

  private setBusy(id: symbol, busy: boolean): void {
    const s = this.subscribers.get(id);
    if (!s || s.busy === busy) return;
    s.busy = busy;
    this.schedule();
  }

  private interval(): number {
    const busy = [...this.subscribers.values()].some((s) => s.busy);
    return busy ? this.settings.busyIntervalMs : this.settings.intervalMs;
  }

  /** Arms the timer for the next poll: one interval after the last one started, never during one. */
  private schedule(): void {
    if (this.stopped || this.inFlight) return;
    const { clock } = this.settings;
    clock.clearTimeout(this.timer);
    const due = this.lastStart === undefined ? clock.now() : this.lastStart + this.interval();
    this.timer = clock.setTimeout(() => void this.poll(), Math.max(0, due - clock.now()));
  }

  private async poll(): Promise<void> {
    const { clock, pollTimeoutMs } = this.settings;
    // The oldest subscriber's lister: any of them lists the same endpoint with the same token.
    const lister = this.subscribers.values().next().value?.lister;
    if (!lister || this.stopped) return;
    const controller = new AbortController();
    this.inFlight = controller;
    this.lastStart = clock.now();
    this.deadline = clock.setTimeout(
      () => controller.abort(new PollTimeout(`no answer within ${pollTimeoutMs} ms`)),
      pollTimeoutMs,
    );
    try {
      const resources = await untilAborted(lister(controller.signal), controller.signal);
      if (this.inFlight === controller) this.succeeded(resources);
    } catch (e) {
      if (this.inFlight === controller) this.failed(e);
    } finally {
      if (this.inFlight === controller) {
        clock.clearTimeout(this.deadline);
        this.inFlight = undefined;
        this.schedule();
      }
    }
  }

  private succeeded(resources: ClusterResource[]): void {
    const containers = indexResources(resources);
    const changes = diffInventory(this.current?.containers, containers);
    const first = this.current === undefined;
    const recovered = this.failures > 0;
    this.current = { takenAt: this.settings.clock.now(), containers };
    this.failures = 0;
    this.error = undefined;
    if (changes.length > 0 || first || recovered)
      this.emit({ type: "snapshot", snapshot: this.current, changes, first, recovered });
  }

  private failed(cause: unknown): void {
    if (this.failures === 0) this.failingSince = this.lastStart ?? this.settings.clock.now();
    this.failures += 1;
    const timedOut = cause instanceof PollTimeout;
    this.error = new InventoryPollError(this.endpoint, this.failures, this.failingSince, timedOut, cause);
    this.emit({ type: "error", error: this.error, snapshot: this.current });
  }

  private emit(event: InventoryEvent): void {
    for (const s of [...this.subscribers.values()]) {
      try {
        s.listener(event);
      } catch (e) {
        // One pair's failing handler must not blind the other pairs.
        this.settings.onListenerError(e);
      }
    }
  }
}

class PollTimeout extends Error {
  override name = "PollTimeout";
}

/** Settles with `work`, or rejects as soon as `signal` aborts, even if `work` ignores the signal. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The pollers of all endpoints: one per endpoint, started by the first subscriber, stopped with the last. */
export class InventoryRegistry {
  private readonly pollers = new Map<string, EndpointPoller>();
  private readonly settings: Settings;

  constructor(options: InventoryOptions = {}) {
    this.settings = {
      clock: options.clock ?? systemClock,
      intervalMs: options.intervalMs ?? 10_000,
      busyIntervalMs: options.busyIntervalMs ?? 2_000,
      pollTimeoutMs: options.pollTimeoutMs ?? 30_000,
      onListenerError: options.onListenerError ?? (() => undefined),
    };
    for (const [name, ms] of Object.entries(this.settings))
      if (typeof ms === "number" && !(Number.isFinite(ms) && ms > 0))
        throw new RangeError(`inventory ${name} must be a positive number of milliseconds, got ${ms}`);
  }

  /**
   * Watches `endpoint`. The first subscriber starts its poller (the first
   * poll runs at once); a later one shares it and reads `snapshot()` for
   * what is already known. `listener` hears every change and failure.
   */
  subscribe(endpoint: Endpoint, lister: InventoryLister, listener: InventoryListener): InventorySubscription {
    const key = endpointKey(endpoint);
    let poller = this.pollers.get(key);
    if (!poller) {
      const created = new EndpointPoller(endpoint, this.settings, () => {
        created.stop();
        this.pollers.delete(key);
      });
      this.pollers.set(key, created);
      poller = created;
    }
    return poller.add(lister, listener);
  }

  /** Endpoints being polled now. */
  get endpoints(): number {
    return this.pollers.size;
  }

  /** Stops every poller (shutdown); subscriptions held elsewhere go quiet. */
  close(): void {
    for (const poller of this.pollers.values()) poller.stop();
    this.pollers.clear();
  }
}
