import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../src/runtime/ratelimit.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";
import { FakeClock } from "./helpers/fakeclock.js";

function setup(limiter?: RateLimiter) {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock, rateLimiter: limiter ?? new RateLimiter(undefined, undefined, 0) });
  return { clock, queue };
}

/** Keys currently obtainable without waiting. */
async function drainReady(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.length > 0) {
    const key = await queue.get();
    if (key === undefined) break;
    keys.push(key);
  }
  return keys;
}

describe("WorkQueue", () => {
  it("de-duplicates a key added several times before it is taken", async () => {
    const { queue } = setup();
    queue.add("ns/a");
    queue.add("ns/b");
    queue.add("ns/a");
    expect(queue.length).toBe(2);
    expect(await drainReady(queue)).toEqual(["ns/a", "ns/b"]);
  });

  it("never hands out a key that is being processed; a re-add runs after done", async () => {
    const { queue } = setup();
    queue.add("ns/a");
    const first = await queue.get();
    queue.add("ns/a");
    queue.add("ns/a");
    expect(queue.length).toBe(0);
    expect(queue.inFlight).toBe(1);
    queue.done(first!);
    expect(queue.length).toBe(1);
    expect(await queue.get()).toBe("ns/a");
  });

  it("a key done without re-add is gone", async () => {
    const { queue } = setup();
    queue.add("ns/a");
    queue.done((await queue.get())!);
    expect(queue.length).toBe(0);
    expect(queue.inFlight).toBe(0);
  });

  it("wakes a waiting worker on add", async () => {
    const { queue } = setup();
    const pending = queue.get();
    queue.add("ns/a");
    expect(await pending).toBe("ns/a");
  });

  it("with many workers, one key is processed by one worker at a time", async () => {
    const { queue } = setup();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        runs += 1;
        if (runs < 5) queue.add("ns/a");
        await new Promise((r) => setImmediate(r));
        running -= 1;
        queue.done(key);
      }
    };
    queue.add("ns/a");
    const workers = [worker(), worker(), worker(), worker()];
    while (runs < 5 || queue.inFlight > 0 || queue.length > 0) await new Promise((r) => setImmediate(r));
    queue.shutDown();
    await Promise.all(workers);
    expect(maxRunning).toBe(1);
    expect(runs).toBe(5);
  });

  it("addAfter delays the key and keeps the earliest pending time", async () => {
    const { queue, clock } = setup();
    queue.addAfter("ns/a", 1000);
    queue.addAfter("ns/a", 5000);
    queue.addAfter("ns/a", 300);
    clock.advance(299);
    expect(queue.length).toBe(0);
    clock.advance(1);
    expect(queue.length).toBe(1);
    clock.advance(10_000);
    expect(queue.length).toBe(1);
  });

  it("requeueAfter-style add: a key delayed while processing runs after done", async () => {
    const { queue, clock } = setup();
    queue.add("ns/a");
    const key = (await queue.get())!;
    queue.addAfter(key, 100);
    clock.advance(100);
    expect(queue.length).toBe(0);
    queue.done(key);
    expect(await queue.get()).toBe("ns/a");
  });

  it("backs off per key: 5 ms doubling, independent keys, reset by forget", async () => {
    const { queue, clock } = setup();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      queue.addRateLimited("ns/a");
      let waited = 0;
      while (queue.length === 0) {
        clock.advance(1);
        waited += 1;
      }
      delays.push(waited);
      queue.done((await queue.get())!);
    }
    expect(delays).toEqual([5, 10, 20, 40, 80]);
    expect(queue.retries("ns/a")).toBe(5);
    expect(queue.retries("ns/b")).toBe(0);
    queue.forget("ns/a");
    expect(queue.retries("ns/a")).toBe(0);
  });

  it("stops handing out work after shutDown and wakes idle workers", async () => {
    const { queue } = setup();
    const idle = queue.get();
    queue.shutDown();
    expect(await idle).toBeUndefined();
    queue.add("ns/a");
    expect(queue.length).toBe(0);
    expect(await queue.get()).toBeUndefined();
  });

  it("drops keys still queued at shutDown instead of handing them out", async () => {
    const { queue } = setup();
    queue.add("ns/a");
    queue.add("ns/b");
    queue.shutDown();
    expect(await queue.get()).toBeUndefined();
  });

  it("drained resolves once in-flight keys are done", async () => {
    const { queue } = setup();
    queue.add("ns/a");
    const key = (await queue.get())!;
    let drained = false;
    const wait = queue.drained().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    queue.done(key);
    await wait;
    expect(drained).toBe(true);
  });

  it("cancels pending delayed adds on shutDown", () => {
    const { queue, clock } = setup();
    queue.addAfter("ns/a", 1000);
    expect(clock.pending).toBe(1);
    queue.shutDown();
    expect(clock.pending).toBe(0);
  });

  it("reports adds, depth, queue and work durations to its observer", async () => {
    const clock = new FakeClock();
    const seen = {
      adds: 0,
      depth: [] as number[],
      queued: [] as number[],
      worked: [] as number[],
      retries: 0,
    };
    const queue = new WorkQueue({
      clock,
      observer: {
        added: () => (seen.adds += 1),
        depth: (n) => seen.depth.push(n),
        queued: (s) => seen.queued.push(s),
        worked: (s) => seen.worked.push(s),
        retried: () => (seen.retries += 1),
      },
    });
    queue.add("ns/a");
    queue.add("ns/a");
    clock.advance(250);
    const key = (await queue.get())!;
    clock.advance(1500);
    queue.done(key);
    queue.addRateLimited("ns/a");
    expect(seen.adds).toBe(1);
    expect(seen.depth).toEqual([1, 0]);
    expect(seen.queued).toEqual([0.25]);
    expect(seen.worked).toEqual([1.5]);
    expect(seen.retries).toBe(1);
  });
});
