import { describe, expect, it } from "vitest";
import {
  maxTimerMs,
  sleep,
  startTimer,
  systemClock,
  withDeadline,
  type TimerPrimitives,
} from "../../src/runtime/clock.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";

const day = 24 * 3_600_000;

/** Timer primitives that only record what is armed; `fire` runs the oldest pending one. */
function recordingTimers() {
  const armed: number[] = [];
  const pending: Array<{ fn: () => void; id: number }> = [];
  let next = 0;
  const timers: TimerPrimitives = {
    set: (fn, ms) => {
      armed.push(ms);
      pending.push({ fn, id: ++next });
      return next;
    },
    clear: (id) => {
      const i = pending.findIndex((p) => p.id === id);
      if (i >= 0) pending.splice(i, 1);
    },
  };
  const fire = (): void => pending.shift()?.fn();
  return { timers, armed, pending, fire };
}

describe("startTimer", () => {
  it.each([
    ["1 s: one timer", 1_000, [1_000]],
    ["exactly the Node limit: one timer", maxTimerMs, [maxTimerMs]],
    ["30 days: chained past the Node limit", 30 * day, [maxTimerMs, 30 * day - maxTimerMs]],
    ["60 days: three timers", 60 * day, [maxTimerMs, maxTimerMs, 60 * day - 2 * maxTimerMs]],
    ["negative: at once", -5, [0]],
  ])("%s", (_case, ms, steps) => {
    const { timers, armed, fire } = recordingTimers();
    let fired = 0;
    startTimer(() => (fired += 1), ms, timers);
    for (let i = 1; i < steps.length; i++) {
      fire();
      expect(fired).toBe(0);
    }
    fire();
    expect(fired).toBe(1);
    expect(armed).toEqual(steps);
  });

  it("never fires an infinite delay", () => {
    const { timers, armed, fire } = recordingTimers();
    let fired = false;
    startTimer(() => (fired = true), Infinity, timers);
    for (let i = 0; i < 5; i++) fire();
    expect(fired).toBe(false);
    expect(armed.every((ms) => ms === maxTimerMs)).toBe(true);
  });

  it("a cancelled chain arms nothing more", () => {
    const { timers, pending, fire } = recordingTimers();
    let fired = false;
    const timer = startTimer(() => (fired = true), 30 * day, timers);
    fire();
    timer.cancel();
    expect(pending).toHaveLength(0);
    fire();
    expect(fired).toBe(false);
  });
});

describe("timers beyond the Node limit", () => {
  it("the system clock does not fire a 30-day timer after 1 ms", async () => {
    let fired = false;
    const handle = systemClock.setTimeout(() => (fired = true), 30 * day);
    await sleep(50);
    systemClock.clearTimeout(handle);
    expect(fired).toBe(false);
  });

  it("a 30-day requeue stays delayed instead of looping hot", async () => {
    const queue = new WorkQueue();
    queue.addAfter("ns/a", 30 * day);
    await sleep(50);
    expect(queue.length).toBe(0);
    queue.shutDown();
  });
});

describe("withDeadline", () => {
  it("aborts the work's signal at the deadline and settles with the fallback", async () => {
    let seen: AbortSignal | undefined;
    const started = Date.now();
    const result = await withDeadline(
      (signal) => {
        seen = signal;
        return new Promise<string>(() => undefined);
      },
      30,
      "late",
    );
    expect(result).toBe("late");
    expect(seen?.aborted).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("settles with the work's value in time and leaves its signal alone", async () => {
    let seen: AbortSignal | undefined;
    const result = await withDeadline(
      async (signal) => {
        seen = signal;
        return "done";
      },
      1_000,
      "late",
    );
    expect(result).toBe("done");
    expect(seen?.aborted).toBe(false);
  });

  it("aborts when the parent signal does", async () => {
    const parent = new AbortController();
    let seen: AbortSignal | undefined;
    const pending = withDeadline(
      (signal) => {
        seen = signal;
        return new Promise<string>(() => undefined);
      },
      60_000,
      "stopped",
      parent.signal,
    );
    parent.abort();
    expect(await pending).toBe("stopped");
    expect(seen?.aborted).toBe(true);
  });
});
