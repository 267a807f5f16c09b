// Each LdapPair's view of the shared inventory poll (src/proxmox/inventory.ts):
// one subscription per pair on its endpoint, a change to one of its
// containers (or to a container carrying one of its hostnames) enqueues the
// pair, and a pair with work in flight makes the poll run at the busy
// interval. Reconciles read the last snapshot instead of listing the cluster
// themselves; only a snapshot whose poll began before the pair's last change
// (a task that ended, a call whose answer was lost) is replaced by a listing
// of its own, so a reconcile never plans on a cluster that predates what it
// just did: a poll that began before a create ended may not show the new
// container, even if it ended after.
import type { ProxmoxClient } from "../proxmox/client.js";
import {
  endpointKey,
  indexResources,
  type ContainerChange,
  type InventoryEvent,
  type InventoryRegistry,
  type InventorySnapshot,
  type InventorySubscription,
} from "../proxmox/inventory.js";
import {
  changedSettings,
  concernsSettings,
  distinctKeys,
  readSettings,
  type SettingKey,
  type SettingsInterest,
} from "../proxmox/settings-poll.js";
import { isOwnedBy } from "../proxmox/tags.js";
import type { ClusterResource } from "../proxmox/types.js";

/** What makes a container, a realm or a node's DNS interesting to a pair. */
export interface PairInterest extends SettingsInterest {
  uid: string;
  servers: readonly string[];
}

export type Enqueue = (key: string) => void;

/** When the last poll of an endpoint began and ended (polls of one endpoint never overlap). */
interface PollTimes {
  start: number;
  end: number;
}

interface Watch {
  endpoint: string;
  /** Shared by every watch of the endpoint. */
  polls: { last?: PollTimes };
  client: ProxmoxClient;
  interest: PairInterest;
  subscription: InventorySubscription;
  /** Settles with the first event after subscribing. */
  first: Promise<void>;
}

export interface InventoryWatchOptions {
  /** How long a reconcile waits for the first poll of a new subscription (default 30 s). */
  firstSnapshotTimeoutMs?: number;
  now?: () => number;
}

export class InventoryWatches {
  private readonly watches = new Map<string, Watch>();
  private readonly polls = new Map<string, { last?: PollTimes }>();
  /** The last reading of each realm and node DNS, by endpoint. */
  private readonly settings = new Map<string, Map<SettingKey, string>>();
  private enqueue: Enqueue = () => undefined;
  private readonly now: () => number;

  constructor(
    private readonly registry: InventoryRegistry,
    private readonly options: InventoryWatchOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Where an inventory change sends the pair's key (the controller's queue). */
  setEnqueue(enqueue: Enqueue): void {
    this.enqueue = enqueue;
  }

  /** Subscribes the pair to its client's endpoint, or keeps its subscription (updating what it cares about). */
  watch(key: string, client: ProxmoxClient, interest: PairInterest): PairWatch {
    const endpoint = endpointKey({ url: client.endpoint, tokenId: client.tokenId });
    let watch = this.watches.get(key);
    if (watch && (watch.endpoint !== endpoint || watch.client !== client)) {
      this.unwatch(key);
      watch = undefined;
    }
    if (!watch) watch = this.subscribe(key, endpoint, client, interest);
    watch.interest = interest;
    return new PairWatch(watch, this.now, this.options.firstSnapshotTimeoutMs ?? 30_000);
  }

  unwatch(key: string): void {
    const watch = this.watches.get(key);
    if (!watch) return;
    watch.subscription.unsubscribe();
    this.watches.delete(key);
    if (![...this.watches.values()].some((w) => w.endpoint === watch.endpoint)) {
      this.polls.delete(watch.endpoint);
      this.settings.delete(watch.endpoint);
    }
  }

  close(): void {
    for (const key of [...this.watches.keys()]) this.unwatch(key);
  }

  private subscribe(key: string, endpoint: string, client: ProxmoxClient, interest: PairInterest): Watch {
    let heard: () => void = () => undefined;
    const first = new Promise<void>((resolve) => (heard = resolve));
    let polls = this.polls.get(endpoint);
    if (!polls) this.polls.set(endpoint, (polls = {}));
    const watch: Watch = { endpoint, polls, client, interest, first, subscription: undefined as never };
    const times = polls;
    watch.subscription = this.registry.subscribe(
      { url: client.endpoint, tokenId: client.tokenId },
      async (signal) => {
        const start = this.now();
        // Beside the listing, not in its way: its timing is what snapshots are judged by.
        const settings = this.pollSettings(endpoint, client, signal);
        const listed = await client.clusterResources({ signal });
        times.last = { start, end: this.now() };
        await settings;
        return listed;
      },
      (event) => {
        heard();
        if (concerns(event, watch.interest)) this.enqueue(key);
      },
    );
    this.watches.set(key, watch);
    return watch;
  }

  /** Reads the endpoint's watched settings once each and enqueues the pairs whose reading changed. */
  private async pollSettings(endpoint: string, client: ProxmoxClient, signal: AbortSignal): Promise<void> {
    const onEndpoint = () => [...this.watches].filter(([, w]) => w.endpoint === endpoint);
    const keys = distinctKeys(onEndpoint().map(([, w]) => w.interest));
    if (keys.length === 0) return;
    const read = await readSettings(client, keys, signal);
    if (signal.aborted || onEndpoint().length === 0) return;
    const before = this.settings.get(endpoint) ?? new Map<SettingKey, string>();
    // Keys no pair watches any more are forgotten; a failed read keeps its last reading.
    const kept = new Map([...before].filter(([k]) => keys.includes(k) && !read.has(k)));
    this.settings.set(endpoint, new Map([...kept, ...read]));
    const changed = changedSettings(before, read);
    if (changed.size === 0) return;
    for (const [key, w] of onEndpoint()) if (concernsSettings(changed, w.interest)) this.enqueue(key);
  }
}

/** One reconcile's handle on the pair's subscription. */
export class PairWatch {
  constructor(
    private readonly watch: Watch,
    private readonly now: () => number,
    private readonly firstTimeoutMs: number,
  ) {}

  setBusy(busy: boolean): void {
    this.watch.subscription.setBusy(busy);
  }

  /**
   * Every guest the token sees, listed no earlier than `notBefore` (clock
   * time): the shared snapshot when its poll began after it, else a listing
   * of our own. Throws the poll's error while the endpoint fails.
   */
  async containers(notBefore: number, signal?: AbortSignal): Promise<ReadonlyMap<number, ClusterResource>> {
    const sub = this.watch.subscription;
    if (!sub.snapshot() && !sub.lastError()) await withTimeout(this.watch.first, this.firstTimeoutMs);
    const error = sub.lastError();
    if (error) throw error;
    const snapshot: InventorySnapshot | undefined = sub.snapshot();
    const began = snapshot ? pollStart(snapshot, this.watch.polls.last) : undefined;
    if (snapshot && began !== undefined && began >= notBefore) return snapshot.containers;
    return indexResources(await this.watch.client.clusterResources({ signal }));
  }
}

/**
 * When the poll behind `snapshot` began: known when the last poll we timed
 * is the one that produced it (it ended no later than the snapshot was taken,
 * and no later poll has ended since). Undefined when that cannot be told.
 */
export function pollStart(snapshot: InventorySnapshot, last: PollTimes | undefined): number | undefined {
  if (!last || last.end > snapshot.takenAt) return undefined;
  return last.start;
}

/** Whether an inventory event may change what the pair should do. */
export function concerns(event: InventoryEvent, interest: PairInterest): boolean {
  // The first failure and the recovery change what the pair reports; repeats of a failure do not.
  if (event.type === "error") return event.error.failures === 1;
  if (event.recovered) return true;
  // The first poll answers the reconcile that subscribed, which waits for it.
  if (event.first) return false;
  return event.changes.some((c) => changeConcerns(c, interest));
}

function changeConcerns(change: ContainerChange, interest: PairInterest): boolean {
  const entries =
    change.kind === "changed"
      ? [change.before, change.after]
      : [change.kind === "added" ? change.after : change.before];
  return entries.some(
    (r) => isOwnedBy(r.tags, interest.uid) || (r.name !== undefined && interest.servers.includes(r.name)),
  );
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref?.();
    void p.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
