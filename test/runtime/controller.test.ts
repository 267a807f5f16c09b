import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { OperatorMetrics } from "../../src/observability/metrics.js";
import { Controller, type Reconciler } from "../../src/runtime/controller.js";
import { TerminalError } from "../../src/runtime/errors.js";
import type { InformerHandlers, ObjectCache } from "../../src/runtime/informer.js";
import { RateLimiter } from "../../src/runtime/ratelimit.js";
import type { KubeObject, ResourceClient } from "../../src/runtime/resource.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";

class FakeCache implements ObjectCache {
  hasSynced = true;
  objects = new Map<string, KubeObject>();
  handlers: InformerHandlers[] = [];
  get(key: string) {
    return this.objects.get(key);
  }
  keys() {
    return [...this.objects.keys()];
  }
  addHandlers(h: InformerHandlers) {
    this.handlers.push(h);
    return () => (this.handlers = this.handlers.filter((x) => x !== h));
  }
  put(name: string) {
    const obj: KubeObject = { metadata: { name, namespace: "ns", resourceVersion: "1" } };
    this.objects.set(`ns/${name}`, obj);
    this.handlers.forEach((h) => h.added(obj));
  }
}

const silent = createLogger({ stream: new Writable({ write: (_c, _e, d) => d() }) });

function setup(reconcile: Reconciler, workers = 1) {
  const cache = new FakeCache();
  const metrics = new OperatorMetrics({ processMetrics: false });
  const queue = new WorkQueue({
    rateLimiter: new RateLimiter({ baseDelayMs: 10, maxDelayMs: 40 }, { qps: 1000, burst: 1000 }),
    observer: metrics.queueObserver("test"),
  });
  const controller = new Controller({
    name: "test",
    cache,
    reconcile,
    queue,
    workers,
    metrics,
    logger: silent,
    resource: {} as ResourceClient,
    status: { update: async (o) => o },
    events: { record: () => undefined },
  });
  return { cache, controller, metrics, queue };
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
};

async function metricValue(metrics: OperatorMetrics, name: string, labels: Record<string, string>) {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  const match = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return match?.value ?? 0;
}

describe("Controller", () => {
  it("reconciles cached objects on start and new ones as they come", async () => {
    const seen: string[] = [];
    const { cache, controller } = setup(
      async (key, obj) => void seen.push(`${key}:${obj ? "present" : "gone"}`),
    );
    cache.put("a");
    controller.start();
    cache.put("b");
    await until(() => seen.length === 2);
    await controller.stop(1000);
    expect(seen.sort()).toEqual(["ns/a:present", "ns/b:present"]);
  });

  it("retries an error with growing backoff, then resets on success", async () => {
    const times: number[] = [];
    const { cache, controller, queue, metrics } = setup(async () => {
      times.push(Date.now());
      if (times.length < 4) throw new Error("transient");
    });
    cache.put("a");
    controller.start();
    await until(() => times.length === 4);
    await until(() => queue.retries("ns/a") === 0);
    await controller.stop(1000);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
    expect(await metricValue(metrics, "controller_runtime_reconcile_total", { result: "error" })).toBe(3);
    expect(await metricValue(metrics, "controller_runtime_reconcile_total", { result: "success" })).toBe(1);
    expect(await metricValue(metrics, "workqueue_retries_total", {})).toBe(3);
  });

  it("does not retry a terminal error", async () => {
    let calls = 0;
    const { cache, controller, metrics } = setup(async () => {
      calls += 1;
      throw new TerminalError("spec is invalid");
    });
    cache.put("a");
    controller.start();
    await until(() => calls === 1);
    await new Promise((r) => setTimeout(r, 150));
    await controller.stop(1000);
    expect(calls).toBe(1);
    expect(await metricValue(metrics, "controller_runtime_terminal_reconcile_errors_total", {})).toBe(1);
  });

  it("runs a terminally failed key again on the periodic resync, as documented", async () => {
    let calls = 0;
    const { cache, controller } = setup(async () => {
      calls += 1;
      throw new TerminalError("spec is invalid");
    });
    cache.put("a");
    controller.start();
    await until(() => calls === 1);
    cache.handlers.forEach((h) => h.resync(cache.get("ns/a")!));
    await until(() => calls === 2);
    await controller.stop(1000);
  });

  it("honours requeueAfter", async () => {
    const times: number[] = [];
    const { cache, controller, metrics } = setup(async () => {
      times.push(Date.now());
      return times.length < 2 ? { requeueAfter: 100 } : undefined;
    });
    cache.put("a");
    controller.start();
    await until(() => times.length === 2);
    await controller.stop(1000);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(99);
    expect(
      await metricValue(metrics, "controller_runtime_reconcile_total", { result: "requeue_after" }),
    ).toBe(1);
  });

  it("with several workers runs distinct keys in parallel but one key at a time", async () => {
    // Every key comes back while all three run, and "a" runs longest: the
    // worker that finishes "b" first must not be handed the "a" added meanwhile.
    const running = new Set<string>();
    let overlapSameKey = false;
    let maxParallel = 0;
    let calls = 0;
    const { cache, controller } = setup(async (key) => {
      if (running.has(key)) overlapSameKey = true;
      running.add(key);
      maxParallel = Math.max(maxParallel, running.size);
      calls += 1;
      await new Promise((r) => setTimeout(r, key === "ns/a" ? 60 : 10));
      running.delete(key);
    }, 3);
    controller.start();
    ["a", "b", "c"].forEach((n) => cache.put(n));
    await until(() => running.size === 3);
    ["a", "b", "c"].forEach((n) => cache.put(n));
    await until(() => calls >= 6 && running.size === 0);
    await controller.stop(1000);
    expect(overlapSameKey).toBe(false);
    expect(maxParallel).toBe(3);
    expect(calls).toBe(6);
  });

  it("on stop, lets a running reconcile finish within the grace period", async () => {
    let finished = false;
    const { cache, controller } = setup(async () => {
      await new Promise((r) => setTimeout(r, 100));
      finished = true;
    });
    cache.put("a");
    controller.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(await controller.stop(2000)).toBe(true);
    expect(finished).toBe(true);
  });

  it("past the grace period, aborts the reconcile's signal and reports it", async () => {
    let aborted = false;
    const { cache, controller } = setup(async (_k, _o, ctx) => {
      await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r()));
      aborted = true;
    });
    cache.put("a");
    controller.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(await controller.stop(50)).toBe(false);
    await until(() => aborted);
  });

  it("with no grace (leadership lost), aborts the reconcile's signal at once", async () => {
    let signal: AbortSignal | undefined;
    const { cache, controller } = setup(async (_k, _o, ctx) => {
      signal = ctx.signal;
      await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r()));
    });
    cache.put("a");
    controller.start();
    await until(() => signal !== undefined);
    const stopped = controller.stop(0);
    // Before stop yields to any timer: another replica may be leading already.
    expect(signal!.aborted).toBe(true);
    await stopped;
  });

  it("cuts the grace period short, aborting the reconcile's signal at once, when leadership is lost during it", async () => {
    let signal: AbortSignal | undefined;
    const { cache, controller } = setup(async (_k, _o, ctx) => {
      signal = ctx.signal;
      await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r()));
    });
    cache.put("a");
    controller.start();
    await until(() => signal !== undefined);
    const lost = new AbortController();
    const stopped = controller.stop(60_000, lost.signal);
    await new Promise((r) => setTimeout(r, 20));
    expect(signal!.aborted).toBe(false);
    lost.abort();
    expect(signal!.aborted).toBe(true);
    const started = Date.now();
    expect(await stopped).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("hands the reconciler a copy: changing it does not change what the cache holds", async () => {
    let calls = 0;
    const { cache, controller } = setup(async (_key, obj) => {
      calls += 1;
      obj!.metadata.labels = { touched: "yes" };
      obj!.status = { phase: "Corrupted" };
    });
    cache.put("a");
    controller.start();
    await until(() => calls === 1);
    await controller.stop(1000);
    expect(cache.get("ns/a")).toEqual({ metadata: { name: "a", namespace: "ns", resourceVersion: "1" } });
  });

  it("a 30-day requeueAfter waits instead of looping hot", async () => {
    let calls = 0;
    const { cache, controller } = setup(async () => {
      calls += 1;
      return { requeueAfter: 30 * 24 * 3_600_000 };
    });
    cache.put("a");
    controller.start();
    await until(() => calls === 1);
    await new Promise((r) => setTimeout(r, 100));
    await controller.stop(1000);
    expect(calls).toBe(1);
  });

  it.each([
    ["a fault in the reconciler (TypeError)", 1, () => (undefined as unknown as { a: number }).a],
    ["a reported failure (Error)", 0, () => Promise.reject(new Error("pve refused"))],
    [
      "a network failure fetch() reports as a TypeError with a cause",
      0,
      () => Promise.reject(new TypeError("fetch failed", { cause: new Error("ECONNREFUSED") })),
    ],
  ])("counts %s as %i panics, and retries it", async (_case, panics, fault) => {
    let calls = 0;
    const { cache, controller, metrics } = setup(async () => {
      calls += 1;
      if (calls === 1) await fault();
    });
    cache.put("a");
    controller.start();
    await until(() => calls === 2);
    await controller.stop(1000);
    expect(
      await metricValue(metrics, "controller_runtime_reconcile_panics_total", { controller: "test" }),
    ).toBe(panics);
    expect(
      await metricValue(metrics, "controller_runtime_reconcile_errors_total", { controller: "test" }),
    ).toBe(1);
  });

  it("reports unfinished work and the longest running reconcile while one runs", async () => {
    let release: () => void = () => undefined;
    let started = false;
    const { cache, controller, metrics } = setup(
      () =>
        new Promise<void>((r) => {
          started = true;
          release = r;
        }),
    );
    cache.put("a");
    controller.start();
    await until(() => started);
    await new Promise((r) => setTimeout(r, 120));
    const labels = { name: "test", controller: "test" };
    expect(await metricValue(metrics, "workqueue_unfinished_work_seconds", labels)).toBeGreaterThanOrEqual(
      0.1,
    );
    expect(
      await metricValue(metrics, "workqueue_longest_running_processor_seconds", labels),
    ).toBeGreaterThanOrEqual(0.1);
    release();
    await controller.stop(1000);
    expect(await metricValue(metrics, "workqueue_unfinished_work_seconds", labels)).toBe(0);
    expect(await metricValue(metrics, "workqueue_longest_running_processor_seconds", labels)).toBe(0);
  });

  it("health fails while one reconcile is stuck", async () => {
    let release: () => void = () => undefined;
    const { cache, controller } = setup(() => new Promise<void>((r) => (release = r)));
    cache.put("a");
    controller.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(controller.healthy()).toBe(true);
    expect(controller.healthy(Date.now() + 11 * 60_000)).toMatch(/ns\/a/);
    release();
    await controller.stop(1000);
  });
});
