import { describe, expect, it } from "vitest";
import {
  diffInventory,
  endpointKey,
  indexResources,
  InventoryPollError,
  InventoryRegistry,
  type ContainerChange,
  type InventoryEvent,
  type InventoryOptions,
} from "../../src/proxmox/inventory.js";
import type { ClusterResource } from "../../src/proxmox/types.js";
import { FakeClock } from "../runtime/helpers/fakeclock.js";

const ct = (vmid: number, over: Partial<ClusterResource> = {}): ClusterResource => ({
  id: `lxc/${vmid}`,
  type: "lxc",
  vmid,
  name: `ct${vmid}`,
  node: "pve1",
  status: "running",
  tags: "ldappair-owner-u;ldappair-server-ldap1",
  uptime: 100,
  ...over,
});
const byVmid = (...list: ClusterResource[]) => new Map(list.map((r) => [r.vmid, r]));
const summary = (changes: ContainerChange[]) =>
  changes.map((c) => (c.kind === "changed" ? `${c.vmid} ${c.fields.join(",")}` : `${c.vmid} ${c.kind}`));

describe("diffInventory", () => {
  it.each([
    ["the first snapshot: every guest added", undefined, [ct(101), ct(102)], ["101 added", "102 added"]],
    ["nothing changed", [ct(101)], [ct(101)], []],
    ["stopped", [ct(101)], [ct(101, { status: "stopped" })], ["101 status"]],
    ["moved to another node", [ct(101)], [ct(101, { node: "pve2" })], ["101 node"]],
    ["locked by a create", [ct(101)], [ct(101, { lock: "create" })], ["101 lock"]],
    ["an empty lock is no lock", [ct(101)], [ct(101, { lock: "" })], []],
    ["re-tagged", [ct(101)], [ct(101, { tags: "ldappair-owner-other" })], ["101 tags"]],
    ["tags re-sorted and re-cased by Proxmox", [ct(101, { tags: "b;a" })], [ct(101, { tags: "A,b" })], []],
    ["renamed", [ct(101)], [ct(101, { name: "ldap1" })], ["101 name"]],
    [
      "the vmid reused by a VM",
      [ct(101)],
      [ct(101, { type: "qemu", id: "qemu/101", name: "vm" })],
      ["101 type,name"],
    ],
    ["uptime and memory are not watched", [ct(101)], [ct(101, { uptime: 5, mem: 1 })], []],
    ["removed", [ct(101), ct(102)], [ct(102)], ["101 removed"]],
    [
      "several at once, by vmid",
      [ct(103), ct(101), ct(102)],
      [ct(104), ct(101, { status: "stopped", lock: "shutdown" }), ct(102)],
      ["101 status,lock", "103 removed", "104 added"],
    ],
  ])("%s", (_, before, after, expected) => {
    expect(summary(diffInventory(before && byVmid(...before), byVmid(...after)))).toEqual(expected);
  });

  it("carries the entries before and after a change", () => {
    const [change] = diffInventory(byVmid(ct(101)), byVmid(ct(101, { status: "stopped" })));
    expect(change).toMatchObject({
      kind: "changed",
      before: { status: "running" },
      after: { status: "stopped" },
    });
  });
});

describe("indexResources", () => {
  it("keys guests by vmid, reading a vmid sent as a string, and skips entries without one", () => {
    const odd = { ...ct(0), vmid: "105" } as unknown as ClusterResource;
    const none = { ...ct(0), vmid: undefined } as unknown as ClusterResource;
    expect([...indexResources([ct(101), odd, none]).keys()]).toEqual([101, 105]);
  });
});

describe("endpointKey", () => {
  const token = "operator@pve!ldappair";
  it.each([
    ["https://pve.example.com:8006", "https://pve.example.com:8006/", true],
    ["https://pve.example.com:8006", "https://PVE.example.com:8006/api2/json", true],
    ["https://pve.example.com:8006", "https://pve.example.com:8007", false],
    ["https://pve.example.com:8006", "https://pve2.example.com:8006", false],
  ])("%s and %s: same poller %s", (a, b, same) => {
    expect(endpointKey({ url: a, tokenId: token }) === endpointKey({ url: b, tokenId: token })).toBe(same);
  });

  it("gives two tokens on one URL their own poller (they may see different guests)", () => {
    const url = "https://pve.example.com:8006";
    expect(endpointKey({ url, tokenId: "a@pve!x" })).not.toBe(endpointKey({ url, tokenId: "b@pve!x" }));
  });
});

/** A cluster behind a fake lister: counts calls, answers, fails or hangs as told. */
class FakeCluster {
  calls = 0;
  signals: AbortSignal[] = [];
  resources: ClusterResource[] = [ct(101), ct(102)];
  mode: "answer" | "fail" | "hang" | "manual" = "answer";
  private pending: Array<(r: ClusterResource[]) => void> = [];

  readonly lister = (signal: AbortSignal): Promise<ClusterResource[]> => {
    this.calls += 1;
    this.signals.push(signal);
    if (this.mode === "fail") return Promise.reject(new Error("596 tls_process_server_certificate"));
    if (this.mode === "hang") return new Promise(() => undefined);
    if (this.mode === "manual") return new Promise((resolve) => this.pending.push(resolve));
    return Promise.resolve(this.resources.map((r) => ({ ...r })));
  };

  answerPending(): void {
    for (const resolve of this.pending.splice(0)) resolve(this.resources.map((r) => ({ ...r })));
  }
}

const ENDPOINT = { url: "https://pve.example.com:8006", tokenId: "operator@pve!ldappair" };
const STEP = 500;
/** Lets the poll's promise chain run after the fake clock fired its timer. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function setup(options: InventoryOptions = {}) {
  const clock = new FakeClock();
  const registry = new InventoryRegistry({ clock, ...options });
  const cluster = new FakeCluster();
  const events: InventoryEvent[][] = [];
  const subscribe = (lister = cluster.lister, endpoint = ENDPOINT) => {
    const seen: InventoryEvent[] = [];
    events.push(seen);
    return registry.subscribe(endpoint, lister, (e) => seen.push(e));
  };
  /** Moves time in small steps, so a poll that ends inside `ms` can arm and fire the next one. */
  const advance = async (ms: number) => {
    for (let left = ms; ; left -= STEP) {
      clock.advance(Math.min(left, STEP));
      await settle();
      if (left <= STEP) return;
    }
  };
  return { clock, registry, cluster, events, subscribe, advance };
}

describe("InventoryRegistry", () => {
  it("polls once at once and once per interval (default 10 s) for 50 subscribers", async () => {
    const { cluster, events, subscribe, advance } = setup();
    const subs = Array.from({ length: 50 }, () => subscribe());
    await advance(0);
    expect(cluster.calls).toBe(1);
    expect(events.every((seen) => seen.length === 1 && seen[0]!.type === "snapshot" && seen[0]!.first)).toBe(
      true,
    );
    await advance(9_999);
    expect(cluster.calls).toBe(1);
    await advance(1);
    expect(cluster.calls).toBe(2);
    await advance(60_000);
    expect(cluster.calls).toBe(8);
    expect(subs[49]!.snapshot()?.containers.size).toBe(2);
  });

  it("tells every subscriber which container changed, and stays quiet when none did", async () => {
    const { cluster, events, subscribe, advance } = setup();
    subscribe();
    subscribe();
    await advance(0);
    await advance(10_000);
    expect(events[0]).toHaveLength(1);
    cluster.resources = [ct(101, { status: "stopped" }), ct(102)];
    await advance(10_000);
    for (const seen of events) {
      const last = seen.at(-1)!;
      expect(last.type === "snapshot" && summary(last.changes)).toEqual(["101 status"]);
    }
  });

  it("polls at the busy interval while any subscriber is busy, and slows down after", async () => {
    const { cluster, subscribe, advance } = setup({ intervalMs: 10_000, busyIntervalMs: 2_000 });
    const idle = subscribe();
    const busy = subscribe();
    await advance(0);
    busy.setBusy(true);
    await advance(2_000);
    expect(cluster.calls).toBe(2);
    await advance(4_000);
    expect(cluster.calls).toBe(4);
    busy.setBusy(false);
    await advance(9_999);
    expect(cluster.calls).toBe(4);
    await advance(1);
    expect(cluster.calls).toBe(5);
    idle.setBusy(true);
    busy.unsubscribe();
    await advance(2_000);
    expect(cluster.calls).toBe(6);
  });

  it("drops back to the idle interval when the busy subscriber leaves", async () => {
    const { cluster, subscribe, advance } = setup();
    subscribe();
    const busy = subscribe();
    await advance(0);
    busy.setBusy(true);
    busy.unsubscribe();
    await advance(9_999);
    expect(cluster.calls).toBe(1);
  });

  it("keeps the last snapshot through a failed poll, reports a typed error and retries at the next tick", async () => {
    const { cluster, events, subscribe, advance } = setup();
    const sub = subscribe();
    await advance(0);
    const good = sub.snapshot();
    cluster.mode = "fail";
    await advance(10_000);
    await advance(10_000);
    const failed = events[0]!.slice(1);
    expect(failed.map((e) => e.type)).toEqual(["error", "error"]);
    const error = (failed[1] as Extract<InventoryEvent, { type: "error" }>).error;
    expect(error).toBeInstanceOf(InventoryPollError);
    expect(error).toMatchObject({ failures: 2, failingSince: 10_000, timedOut: false, endpoint: ENDPOINT });
    expect(error.message).toBe(
      "inventory poll of https://pve.example.com:8006 as operator@pve!ldappair failed (2 in a row): 596 tls_process_server_certificate",
    );
    expect(sub.snapshot()).toBe(good);
    expect(sub.lastError()).toBe(error);
    expect(cluster.calls).toBe(3);

    cluster.mode = "answer";
    cluster.resources = [ct(101)];
    await advance(10_000);
    const back = events[0]!.at(-1)!;
    expect(back.type === "snapshot" && back.recovered && summary(back.changes)).toEqual(["102 removed"]);
    expect(sub.lastError()).toBeUndefined();
  });

  it("reports a recovery even when nothing changed meanwhile", async () => {
    const { cluster, events, subscribe, advance } = setup();
    subscribe();
    await advance(0);
    cluster.mode = "fail";
    await advance(10_000);
    cluster.mode = "answer";
    await advance(10_000);
    expect(
      events[0]!.map((e) => (e.type === "snapshot" ? `snapshot ${e.changes.length} ${e.recovered}` : e.type)),
    ).toEqual(["snapshot 2 false", "error", "snapshot 0 true"]);
  });

  it("never overlaps polls: a slow poll delays the next one until it ends", async () => {
    const { cluster, subscribe, advance } = setup({ pollTimeoutMs: 60_000 });
    subscribe();
    const other = subscribe();
    cluster.mode = "manual";
    await advance(0);
    // A pair turning busy mid-poll must not start a second one beside it.
    other.setBusy(true);
    await advance(25_000);
    expect(cluster.calls).toBe(1);
    cluster.answerPending();
    await settle();
    // Overdue: the next poll starts as soon as the slow one ended.
    await advance(0);
    expect(cluster.calls).toBe(2);
  });

  it("abandons a poll that exceeds its timeout, aborts its signal and tries again", async () => {
    const { cluster, events, subscribe, advance } = setup({ pollTimeoutMs: 5_000 });
    subscribe();
    cluster.mode = "hang";
    await advance(0);
    await advance(5_000);
    expect(cluster.signals[0]!.aborted).toBe(true);
    const [event] = events[0]!;
    expect(event?.type === "error" && event.error.timedOut).toBe(true);
    expect(event?.type === "error" && event.error.message).toMatch(/no answer within 5000 ms/);
    await advance(5_000);
    expect(cluster.calls).toBe(2);
  });

  it("stops polling when the last subscriber leaves, aborting a poll in flight", async () => {
    const { clock, registry, cluster, subscribe, advance } = setup();
    const a = subscribe();
    const b = subscribe();
    await advance(0);
    cluster.mode = "hang";
    await advance(10_000);
    a.unsubscribe();
    expect(registry.endpoints).toBe(1);
    b.unsubscribe();
    b.unsubscribe();
    expect(registry.endpoints).toBe(0);
    expect(cluster.signals[1]!.aborted).toBe(true);
    expect(clock.pending).toBe(0);
    await advance(100_000);
    expect(cluster.calls).toBe(2);
  });

  it("starts afresh, polling at once, when a pair comes back to an endpoint it left", async () => {
    const { cluster, subscribe, advance } = setup();
    subscribe().unsubscribe();
    await advance(0);
    expect(cluster.calls).toBe(0);
    const sub = subscribe();
    await advance(0);
    expect(cluster.calls).toBe(1);
    expect(sub.snapshot()?.containers.size).toBe(2);
  });

  it("polls each endpoint on its own", async () => {
    const { registry, cluster, subscribe, advance } = setup();
    const other = new FakeCluster();
    subscribe();
    subscribe(other.lister, { ...ENDPOINT, tokenId: "other@pve!t" });
    subscribe(cluster.lister, { ...ENDPOINT, url: `${ENDPOINT.url}/` });
    await advance(10_000);
    expect([registry.endpoints, cluster.calls, other.calls]).toEqual([2, 2, 2]);
  });

  it("lists through a remaining subscriber's lister once the first one left", async () => {
    const { cluster, subscribe, advance } = setup();
    const second = new FakeCluster();
    const first = subscribe();
    subscribe(second.lister);
    await advance(0);
    first.unsubscribe();
    await advance(10_000);
    expect([cluster.calls, second.calls]).toEqual([1, 1]);
  });

  it("still tells the others when one subscriber's listener throws", async () => {
    const clock = new FakeClock();
    const thrown: unknown[] = [];
    const registry = new InventoryRegistry({ clock, onListenerError: (e) => thrown.push(e) });
    const cluster = new FakeCluster();
    const heard: InventoryEvent[] = [];
    registry.subscribe(ENDPOINT, cluster.lister, () => {
      throw new Error("bug in one pair");
    });
    registry.subscribe(ENDPOINT, cluster.lister, (e) => heard.push(e));
    clock.advance(0);
    await settle();
    expect(heard).toHaveLength(1);
    expect(thrown).toHaveLength(1);
  });

  it.each([
    ["intervalMs", 0],
    ["busyIntervalMs", -1],
    ["pollTimeoutMs", Number.NaN],
  ])("refuses %s = %s", (name, value) => {
    expect(() => new InventoryRegistry({ [name]: value })).toThrow(RangeError);
  });
});
