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

/** The classes `statusfilter` selects, as PVE's upid_normalize_status_type sorts exit statuses into them. */
export const STATUS_TYPES = ["ok", "warning", "error", "unknown"] as const;
export type StatusType = (typeof STATUS_TYPES)[number];

/** The class of an exit status; a running task has none yet and counts as unknown. */
export function statusType(exitstatus: string | undefined): StatusType {
  if (!exitstatus || exitstatus === "unexpected status") return "unknown";
  if (exitstatus === "OK") return "ok";
  if (/^WARNINGS: \d+$/.test(exitstatus)) return "warning";
  return "error";
}

/** PVE's split_list: NUL-separated when there is a NUL, else separated by commas, semicolons and spaces. */
function splitList(s: string): string[] {
  return (s.includes("\0") ? s.split("\0") : s.split(/[\s,;]+/)).map((x) => x.trim()).filter(Boolean);
}

/** The format check of `statusfilter` (pve-task-status-type-list): the error text, undefined when fine. */
export function statusFilterFormat(value: string): string | undefined {
  const bad = splitList(value).find((x) => !/^(ok|error|warning|unknown)$/i.test(x));
  return bad === undefined ? undefined : `invalid status '${bad}'`;
}

/** The classes a task list shows: `errors=1` leaves out ok and overrides `statusfilter`. */
export function wantedStatusTypes(statusfilter: string | undefined, errors: boolean): Set<StatusType> {
  if (errors) return new Set(STATUS_TYPES.filter((t) => t !== "ok"));
  if (statusfilter === undefined) return new Set(STATUS_TYPES);
  return new Set(splitList(statusfilter).map((x) => x.toLowerCase() as StatusType));
}

export interface TaskListQuery {
  source: "archive" | "active" | "all";
  statusTypes: ReadonlySet<StatusType>;
  /** The caller's visibility and the plain filters (user, type, vmid, since, until). */
  matches: (t: TaskState) => boolean;
  start: number;
  limit: number;
}

/** One page of a list and, as PVE's `total` result attribute, the count of every match. */
export interface Page<T> {
  total: number;
  items: T[];
}

/**
 * GET /nodes/{node}/tasks: the running tasks first when the source takes active ones, then the archive of
 * ended tasks, newest first. `total` counts every match, also those before `start` and after `limit`.
 */
export function selectTasks(tasks: readonly TaskState[], q: TaskListQuery): Page<TaskState> {
  const newestFirst = [...tasks].reverse();
  const active = q.source === "archive" ? [] : newestFirst.filter((t) => t.status === "running");
  const archive = q.source === "active" ? [] : newestFirst.filter((t) => t.status === "stopped");
  const matching = [...active, ...archive].filter(
    (t) => q.matches(t) && q.statusTypes.has(statusType(t.exitstatus)),
  );
  return { total: matching.length, items: matching.slice(q.start, q.start + q.limit) };
}

/**
 * GET .../tasks/{upid}/log: lines numbered from 1, `limit=0` reads to the end, and an empty log reads as
 * the one line `no content` (PVE's dump_logfile).
 */
export function logPage(
  lines: readonly string[],
  start: number,
  limit: number,
): Page<{ n: number; t: string }> {
  if (lines.length === 0) return { total: 1, items: [{ n: 1, t: "no content" }] };
  const end = limit === 0 ? lines.length : start + limit;
  return { total: lines.length, items: lines.slice(start, end).map((t, i) => ({ n: start + i + 1, t })) };
}
