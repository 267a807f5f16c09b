// The light watch of a pair's task in flight: its status alone is read every
// interval, and the pair is enqueued once, when the task has ended.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TaskStatus } from "../../src/proxmox/types.js";
import { TaskWatches } from "../../src/reconcile/task-watch.js";

const UPID = "UPID:pve1:00001234:00000001:6B0F4CC8:vzstop:101:root@pam:";
const OTHER = "UPID:pve1:00001235:00000002:6B0F4CC9:vzstart:101:root@pam:";

/** A task that runs until `end()`, or fails to be read once `fail()` is called; counts the reads. */
function fakeTask() {
  let state: "running" | "stopped" | "error" = "running";
  const reads: string[] = [];
  const client = {
    taskStatus: (upid: string): Promise<TaskStatus> => {
      reads.push(upid);
      if (state === "error") return Promise.reject(new Error("connection refused"));
      return Promise.resolve({
        upid,
        node: "pve1",
        status: state,
        ...(state === "stopped" ? { exitstatus: "OK" } : {}),
      } as TaskStatus);
    },
  };
  return {
    client,
    reads,
    end: () => void (state = "stopped"),
    fail: () => void (state = "error"),
  };
}

let watches: TaskWatches;
let enqueued: string[];

beforeEach(() => {
  vi.useFakeTimers();
  watches = new TaskWatches({ intervalMs: 200 });
  enqueued = [];
  watches.setEnqueue((key) => enqueued.push(key));
});

afterEach(() => {
  watches.close();
  vi.useRealTimers();
});

describe("TaskWatches", () => {
  it("reads the task every interval while it runs and enqueues the pair once when it ends", async () => {
    const task = fakeTask();
    watches.watch("ns/a", task.client, UPID);
    await vi.advanceTimersByTimeAsync(1000);
    expect(task.reads).toHaveLength(5);
    expect(enqueued).toEqual([]);
    task.end();
    await vi.advanceTimersByTimeAsync(200);
    expect(enqueued).toEqual(["ns/a"]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(task.reads).toHaveLength(6);
    expect(enqueued).toEqual(["ns/a"]);
    expect(watches.watched().size).toBe(0);
  });

  it("keeps one watch for the same task, however often a reconcile asks", async () => {
    const task = fakeTask();
    for (let i = 0; i < 5; i++) {
      watches.watch("ns/a", task.client, UPID);
      await vi.advanceTimersByTimeAsync(100);
    }
    // 500 ms: two reads at the interval, not one per call.
    expect(task.reads).toHaveLength(2);
  });

  it("does not watch again a task it saw ended, so a status that still names it enqueues nothing more", async () => {
    const task = fakeTask();
    task.end();
    watches.watch("ns/a", task.client, UPID);
    await vi.advanceTimersByTimeAsync(200);
    watches.watch("ns/a", task.client, UPID);
    await vi.advanceTimersByTimeAsync(1000);
    expect(enqueued).toEqual(["ns/a"]);
    expect(task.reads).toHaveLength(1);
  });

  it("ends the watch without enqueueing when the status cannot be read (the regular poll reports it)", async () => {
    const task = fakeTask();
    task.fail();
    watches.watch("ns/a", task.client, UPID);
    await vi.advanceTimersByTimeAsync(1000);
    expect(task.reads).toHaveLength(1);
    expect(enqueued).toEqual([]);
    // Asked again for the same task, it stays quiet: no read per reconcile while Proxmox fails.
    watches.watch("ns/a", task.client, UPID);
    await vi.advanceTimersByTimeAsync(1000);
    expect(task.reads).toHaveLength(1);
  });

  it("replaces the watch when the pair's task changes, and stops it on unwatch", async () => {
    const first = fakeTask();
    const second = fakeTask();
    watches.watch("ns/a", first.client, UPID);
    await vi.advanceTimersByTimeAsync(200);
    watches.watch("ns/a", second.client, OTHER);
    first.end();
    await vi.advanceTimersByTimeAsync(400);
    expect(first.reads).toHaveLength(1);
    expect(second.reads).toEqual([OTHER, OTHER]);
    expect(enqueued).toEqual([]);
    watches.unwatch("ns/a");
    second.end();
    await vi.advanceTimersByTimeAsync(1000);
    expect(second.reads).toHaveLength(2);
    expect(enqueued).toEqual([]);
  });

  it("watches each pair on its own", async () => {
    const a = fakeTask();
    const b = fakeTask();
    watches.watch("ns/a", a.client, UPID);
    watches.watch("ns/b", b.client, OTHER);
    b.end();
    await vi.advanceTimersByTimeAsync(200);
    expect(enqueued).toEqual(["ns/b"]);
    a.end();
    await vi.advanceTimersByTimeAsync(200);
    expect(enqueued).toEqual(["ns/b", "ns/a"]);
  });
});
