// A light watch on the one task each pair has in flight: between the
// reconciles that look at everything (taskPollMs apart), only the task's
// status is read, every `intervalMs`, and the pair is enqueued the moment it
// has ended. A task's end is what the next step waits for, and a full look
// (Secrets, inventory, storages, probes, preflight) is too costly to run
// often; one GET is not. Nothing is decided here: the reconcile that follows
// reads the task again and plans on what it sees. A read that fails ends the
// watch without a word (the regular poll reports it), and a task once seen
// ended is not watched again, so a pair whose status still names it cannot
// be enqueued over and over.
import type { ProxmoxClient } from "../proxmox/client.js";
import { taskOutcome } from "../proxmox/tasks.js";
import type { Enqueue } from "./watch.js";

export interface TaskWatchOptions {
  /** Between two reads of a task's status. */
  intervalMs: number;
  setTimeout?: (fn: () => void, ms: number) => { unref?(): unknown };
  clearTimeout?: (handle: unknown) => void;
}

interface Entry {
  upid: string;
  timer: unknown;
  abort: AbortController;
}

type TaskReader = Pick<ProxmoxClient, "taskStatus">;

export class TaskWatches {
  private readonly entries = new Map<string, Entry>();
  /** Per pair, the last task seen ended (or unreadable) here. */
  private readonly ended = new Map<string, string>();
  private enqueue: Enqueue = () => undefined;
  private readonly setTimer: NonNullable<TaskWatchOptions["setTimeout"]>;
  private readonly clearTimer: NonNullable<TaskWatchOptions["clearTimeout"]>;

  constructor(private readonly options: TaskWatchOptions) {
    this.setTimer = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout ?? ((h) => clearTimeout(h as NodeJS.Timeout));
  }

  setEnqueue(enqueue: Enqueue): void {
    this.enqueue = enqueue;
  }

  /** Watches `upid` for the pair `key`; a watch of the same task goes on, one of another is replaced. */
  watch(key: string, client: TaskReader, upid: string): void {
    if (this.entries.get(key)?.upid === upid || this.ended.get(key) === upid) return;
    this.unwatch(key);
    const entry: Entry = { upid, timer: undefined, abort: new AbortController() };
    this.entries.set(key, entry);
    this.arm(key, entry, client);
  }

  /** Stops the pair's watch (its task is done, or the pair is gone). */
  unwatch(key: string): void {
    this.ended.delete(key);
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.clearTimer(entry.timer);
    entry.abort.abort();
  }

  /** The task each pair is watched for (for tests and debugging). */
  watched(): ReadonlyMap<string, string> {
    return new Map([...this.entries].map(([k, e]) => [k, e.upid]));
  }

  close(): void {
    for (const key of [...this.entries.keys()]) this.unwatch(key);
  }

  private arm(key: string, entry: Entry, client: TaskReader): void {
    const timer = this.setTimer(() => void this.check(key, entry, client), this.options.intervalMs);
    timer.unref?.();
    entry.timer = timer;
  }

  private async check(key: string, entry: Entry, client: TaskReader): Promise<void> {
    let state: "running" | "ended" | "unreadable";
    try {
      const outcome = taskOutcome(await client.taskStatus(entry.upid, { signal: entry.abort.signal }));
      state = outcome.state === "running" ? "running" : "ended";
    } catch {
      state = "unreadable";
    }
    // Replaced or dropped while the read was on its way.
    if (this.entries.get(key) !== entry) return;
    if (state === "running") return this.arm(key, entry, client);
    this.entries.delete(key);
    this.ended.set(key, entry.upid);
    if (state === "ended") this.enqueue(key);
  }
}
