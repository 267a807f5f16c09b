/**
 * Asynchronous tasks (pveproxy's forked workers): a UPID naming the node, a log, and an exit status of
 * `OK`, `WARNINGS: N`, an error text, or `unexpected status` for a task whose worker vanished (a task
 * still running when the simulator stopped).
 */
import type { Faults } from "./faults.js";
import type { StateStore, TaskState } from "./state.js";
import { formatUpid } from "./upid.js";

export interface TaskContext {
  readonly upid: string;
  log(line: string): void;
  /** Logs a warning: the task ends `WARNINGS: N` instead of `OK`. */
  warn(line: string): void;
  /**
   * Waits `ms` scaled by the speed factor. An injected task failure is thrown from the first wait, so the
   * worker's effect does not happen and its own error handling runs.
   */
  sleep(ms: number): Promise<void>;
}

export type Worker = (ctx: TaskContext) => Promise<void>;

export class TaskManager {
  private readonly byUpid = new Map<string, TaskState>();
  private readonly running = new Set<Promise<void>>();
  private pstart = Math.floor(Math.random() * 0xffffff);
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly store: StateStore,
    private readonly faults: Faults,
    private readonly speed: () => number,
  ) {
    for (const t of store.data.tasks) {
      // A worker cannot survive a restart of its daemon: Proxmox reports such tasks this way.
      if (t.status === "running") {
        t.status = "stopped";
        t.exitstatus = "unexpected status";
        t.endtime = Math.floor(Date.now() / 1000);
      }
      this.byUpid.set(t.upid, t);
    }
  }

  scaled(ms: number): number {
    return ms * this.speed();
  }

  wait(ms: number): Promise<void> {
    const t = this.scaled(ms);
    return new Promise((resolve) => {
      if (this.closed) return; // the simulator stopped: the worker never goes on
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.closed) resolve();
      }, t);
      this.timers.add(timer);
    });
  }

  /** Stops every worker where it waits; their tasks stay `running` in the state file, like workers lost in a crash. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Starts a worker and returns its UPID at once. */
  start(node: string, type: string, id: string, user: string, worker: Worker): string {
    const data = this.store.data;
    const pid = data.nextPid++;
    const starttime = Math.floor(Date.now() / 1000);
    this.pstart += 1 + Math.floor(Math.random() * 50);
    const upid = formatUpid({ node, pid, pstart: this.pstart, starttime, type, id, user });
    const task: TaskState = {
      upid,
      node,
      pid,
      pstart: this.pstart,
      starttime,
      type,
      id,
      user,
      status: "running",
      log: [],
    };
    data.tasks.push(task);
    this.byUpid.set(upid, task);
    this.store.changed();

    const fault = this.faults.takeTaskFailure(type, id);
    const injected = fault && !fault.warnings ? fault : undefined;
    let warnings = 0;
    let first = true;
    const ctx: TaskContext = {
      upid,
      log: (line) => {
        task.log.push(line);
      },
      warn: (line) => {
        warnings++;
        task.log.push(`WARN: ${line}`);
      },
      sleep: async (ms) => {
        await this.wait(ms);
        if (first && injected) {
          first = false;
          throw new Error(injected.message);
        }
        first = false;
      },
    };
    const run = (async () => {
      try {
        await worker(ctx);
        for (let i = 0; i < (fault?.warnings ?? 0); i++) ctx.warn(fault!.message);
        if (injected && first) throw new Error(injected.message);
        task.exitstatus = warnings > 0 ? `WARNINGS: ${warnings}` : "OK";
        task.log.push(warnings > 0 ? `TASK WARNINGS: ${warnings}` : "TASK OK");
      } catch (e) {
        const msg = (e instanceof Error ? e.message : String(e)).replace(/\n+$/, "");
        task.exitstatus = msg;
        task.log.push(`TASK ERROR: ${msg}`);
      } finally {
        task.status = "stopped";
        task.endtime = Math.floor(Date.now() / 1000);
        this.store.changed();
      }
    })();
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
    return upid;
  }

  get(upid: string): TaskState | undefined {
    return this.byUpid.get(upid);
  }

  list(): TaskState[] {
    return this.store.data.tasks;
  }

  /** Resolves when every task running now has ended. */
  async idle(): Promise<void> {
    while (this.running.size > 0 && !this.closed) await Promise.allSettled([...this.running]);
  }

  /** Resolves when the task has ended; returns it. */
  async waitFor(upid: string, timeoutMs = 60_000): Promise<TaskState> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = this.byUpid.get(upid);
      if (!t) throw new Error(`no such task ${upid}`);
      if (t.status === "stopped") return t;
      if (Date.now() > deadline) throw new Error(`task ${upid} still running after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
