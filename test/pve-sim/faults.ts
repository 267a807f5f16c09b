/**
 * Fault injection. Request faults match a method (optional, any when absent) and a path pattern on the
 * path below /api2/json: a string where `*` matches any run of characters, slashes included
 * (`/nodes/pve1/lxc*` matches `/nodes/pve1/lxc` and everything under it), `re:REGEX` for a regular
 * expression, or a RegExp in-process.
 */
import { globToRegExp } from "./glob.js";

export type PathPattern = string | RegExp;

export interface RequestMatch {
  method?: string;
  path: PathPattern;
  /** How many matching requests it affects (default 1; 0 or absent with `always` = until cleared). */
  count?: number;
  always?: boolean;
}

export interface FailRequestsFault extends RequestMatch {
  status: number;
  message: string;
}

export interface LatencyFault extends RequestMatch {
  ms: number;
}

export interface DropResponseFault extends RequestMatch {
  /** `reset`: the connection is destroyed after the action; `timeout`: no answer until the client gives up. */
  mode?: "reset" | "timeout";
}

export interface FailTaskFault {
  /** Task type, e.g. vzcreate, vzstart, vzstop, vzshutdown, vzdestroy, ociregistrypull, auth-realm-sync. */
  type: string;
  message: string;
  /** Instead of failing, the task succeeds with this many warnings (`WARNINGS: N`), each logging `message`. */
  warnings?: number;
  /** Only the task with this id (e.g. a vmid). */
  id?: string;
  count?: number;
}

export interface UnreachableFault {
  node: string;
  /** 595 (connection failed) or 596 (TLS failed). */
  status?: 595 | 596;
  message?: string;
}

interface Counted<T> {
  spec: T;
  left: number;
  re: RegExp;
}

export class Faults {
  private fails: Counted<FailRequestsFault>[] = [];
  private latencies: Counted<LatencyFault>[] = [];
  private drops: Counted<DropResponseFault>[] = [];
  private taskFails: { spec: FailTaskFault; left: number }[] = [];
  private unreachable = new Map<string, UnreachableFault>();
  /** Set by the simulator: kills a container's process as if it crashed. */
  killer: (vmid: number) => boolean = () => false;

  private counted<T extends RequestMatch>(spec: T): Counted<T> {
    return { spec, left: spec.always ? Infinity : (spec.count ?? 1), re: globToRegExp(spec.path) };
  }

  /** The next N requests matching get `status` and `message` without being performed. */
  failRequests(spec: FailRequestsFault): void {
    this.fails.push(this.counted(spec));
  }

  /** Matching requests wait `ms` before they are handled. */
  addLatency(spec: LatencyFault): void {
    this.latencies.push(this.counted(spec));
  }

  /** Matching requests are performed but their response is lost. */
  dropResponses(spec: DropResponseFault): void {
    this.drops.push(this.counted(spec));
  }

  /** The next task of this type fails with `message` (after its duration; its effect does not happen). */
  failNextTask(spec: FailTaskFault): void {
    this.taskFails.push({ spec, left: spec.count ?? 1 });
  }

  /** The next task of this type succeeds but ends `WARNINGS: N`. */
  warnNextTask(spec: { type: string; message: string; warnings: number; id?: string; count?: number }): void {
    this.failNextTask(spec);
  }

  /** Requests routed to this node answer 595/596 as pveproxy does when it cannot reach it. */
  nodeUnreachable(spec: UnreachableFault): void {
    this.unreachable.set(spec.node, spec);
  }

  nodeReachable(node: string): void {
    this.unreachable.delete(node);
  }

  /** Kills the container's process (SIGKILL); the container is then reported stopped. */
  killContainer(vmid: number): boolean {
    return this.killer(vmid);
  }

  clear(): void {
    this.fails = [];
    this.latencies = [];
    this.drops = [];
    this.taskFails = [];
    this.unreachable.clear();
  }

  list(): Record<string, unknown> {
    const show = <T extends RequestMatch>(c: Counted<T>) => ({
      ...c.spec,
      path: String(c.spec.path),
      left: c.left === Infinity ? "always" : c.left,
    });
    return {
      failRequests: this.fails.map(show),
      latency: this.latencies.map(show),
      dropResponses: this.drops.map(show),
      failTasks: this.taskFails.map((t) => ({ ...t.spec, left: t.left })),
      unreachable: [...this.unreachable.values()],
    };
  }

  private take<T extends RequestMatch>(list: Counted<T>[], method: string, path: string): T | undefined {
    const hit = list.find(
      (c) => c.left > 0 && (!c.spec.method || c.spec.method.toUpperCase() === method) && c.re.test(path),
    );
    if (!hit) return undefined;
    hit.left--;
    if (hit.left <= 0) list.splice(list.indexOf(hit), 1);
    return hit.spec;
  }

  takeFail(method: string, path: string): FailRequestsFault | undefined {
    return this.take(this.fails, method, path);
  }

  takeLatency(method: string, path: string): LatencyFault | undefined {
    return this.take(this.latencies, method, path);
  }

  takeDrop(method: string, path: string): DropResponseFault | undefined {
    return this.take(this.drops, method, path);
  }

  takeTaskFailure(type: string, id: string): FailTaskFault | undefined {
    const hit = this.taskFails.find(
      (t) => t.left > 0 && t.spec.type === type && (t.spec.id === undefined || t.spec.id === id),
    );
    if (!hit) return undefined;
    if (--hit.left <= 0) this.taskFails.splice(this.taskFails.indexOf(hit), 1);
    return hit.spec;
  }

  unreachableNode(node: string): UnreachableFault | undefined {
    return this.unreachable.get(node);
  }
}
