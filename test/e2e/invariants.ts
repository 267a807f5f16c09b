// The invariants of a rolling update, checked continuously from the
// simulator's state while an end-to-end test runs:
//   - never both servers of the pair down at once;
//   - never a container the pair does not own touched (stopped, started,
//     reconfigured, deleted, a task run on it) nor one created untagged;
//   - never two running containers for one server.
// A server is up while one of the pair's containers for it runs and listens
// on its port (the simulator's `booted`): what a client connecting now finds.
// "Both down" is judged only once both servers have been seen up together,
// so a pair still being provisioned is no violation.
//
// The pure part turns one sample of the state into the conditions that hold
// in it, and a ledger turns conditions into intervals; InvariantMonitor is
// the shell that samples every few tens of milliseconds and on every
// container event, and also keeps what the benchmark needs: each task's
// start and end, and each container's start and boot.
import { operatorTags, isOwnedBy, parseTags } from "../../src/proxmox/tags.js";
import type { ContainerEvent, PveSimulator } from "../pve-sim/simulator.js";
import type { SimState } from "../pve-sim/state.js";

export interface ContainerSample {
  vmid: number;
  /** Fixed at creation and never reused: tells a container from a later one with the same vmid. */
  address: string;
  node: string;
  hostname: string;
  /** The pair's server this container is, when the pair owns it. */
  server?: string;
  running: boolean;
  /** Its process listens on its port. */
  listening: boolean;
  image?: string;
  /** Status, start time, config and pending changes: any change by anyone shows here. */
  fingerprint: string;
}

export interface TaskSample {
  upid: string;
  type: string;
  /** The task's object: a vmid for container tasks, a storage or realm otherwise. */
  id: string;
  node: string;
  running: boolean;
  exitstatus?: string;
}

export interface Sample {
  at: number;
  containers: ContainerSample[];
  tasks: TaskSample[];
}

/** Reads the simulator's state for the pair `uid`; touches nothing. */
export function sampleOf(state: Readonly<SimState>, uid: string, at: number): Sample {
  const containers = Object.values(state.containers).map((ct): ContainerSample => {
    const tags = String(ct.conf["tags"] ?? "");
    const owned = isOwnedBy(tags, uid);
    const server = owned ? (operatorTags(tags)?.server ?? parseTags(tags).servers[0]) : undefined;
    return {
      vmid: ct.vmid,
      address: ct.address,
      node: ct.node,
      hostname: String(ct.conf["hostname"] ?? `CT${ct.vmid}`),
      ...(server !== undefined ? { server } : {}),
      running: ct.status === "running",
      listening: ct.status === "running" && ct.booted === true,
      ...(ct.image !== undefined ? { image: ct.image } : {}),
      fingerprint: JSON.stringify([
        ct.address,
        ct.node,
        ct.status,
        ct.startedAt ?? null,
        ct.conf,
        ct.pending,
        ct.pendingDelete,
      ]),
    };
  });
  const tasks = state.tasks.map((t): TaskSample => ({
    upid: t.upid,
    type: t.type,
    id: t.id,
    node: t.node,
    running: t.status === "running",
    ...(t.exitstatus !== undefined ? { exitstatus: t.exitstatus } : {}),
  }));
  return { at, containers, tasks };
}

/** What was there when watching began: the containers the pair does not own, and the tasks. */
export interface Baseline {
  foreign: Record<number, ContainerSample>;
  tasks: ReadonlySet<string>;
}

export function baselineOf(sample: Sample): Baseline {
  const foreign: Record<number, ContainerSample> = {};
  for (const c of sample.containers) if (c.server === undefined) foreign[c.vmid] = c;
  return { foreign, tasks: new Set(sample.tasks.map((t) => t.upid)) };
}

export type ViolationKind = "BothDown" | "TwoRunning" | "ForeignTouched" | "ForeignCreated";

/** A condition that holds in one sample; `key` tells one instance from another. */
export interface Condition<K extends string = string> {
  key: string;
  kind: K;
  detail: string;
}

export function serversUp(sample: Sample, servers: readonly string[]): Record<string, boolean> {
  return Object.fromEntries(
    servers.map((s) => [s, sample.containers.some((c) => c.server === s && c.listening)]),
  );
}

/** The servers that are down in this sample, as conditions (not violations: the record of outages). */
export function downConditions(sample: Sample, servers: readonly string[]): Condition<"Down">[] {
  const up = serversUp(sample, servers);
  return servers
    .filter((s) => !up[s])
    .map((s) => ({ key: `Down:${s}`, kind: "Down", detail: `${s} has no running, listening container` }));
}

/** Container tasks of Proxmox: their id is the vmid. */
const CONTAINER_TASK = /^vz/;

/**
 * The violations that hold in `sample`. `armed`: both servers have been up
 * together since watching began. `allowedForeign`: containers the test itself
 * made after the baseline.
 */
export function violationsIn(
  baseline: Baseline,
  sample: Sample,
  servers: readonly string[],
  armed: boolean,
  allowedForeign: ReadonlySet<number> = new Set(),
): Condition<ViolationKind>[] {
  const found: Condition<ViolationKind>[] = [];
  const up = serversUp(sample, servers);
  if (armed && servers.every((s) => !up[s]))
    found.push({ key: "BothDown", kind: "BothDown", detail: `${servers.join(" and ")} down at once` });
  for (const s of servers) {
    const running = sample.containers.filter((c) => c.server === s && c.running).map((c) => c.vmid);
    if (running.length > 1)
      found.push({
        key: `TwoRunning:${s}:${running.join(",")}`,
        kind: "TwoRunning",
        detail: `${s} runs in ${running.map((v) => `CT ${v}`).join(" and ")} at once`,
      });
  }
  for (const before of Object.values(baseline.foreign)) {
    const now = sample.containers.find((c) => c.vmid === before.vmid);
    const what = !now
      ? "deleted"
      : now.running !== before.running
        ? now.running
          ? "started"
          : "stopped"
        : now.fingerprint !== before.fingerprint
          ? "changed (config, pending changes or start time)"
          : undefined;
    if (what)
      found.push({
        key: `ForeignTouched:${before.vmid}:${what}`,
        kind: "ForeignTouched",
        detail: `CT ${before.vmid} (${before.hostname} on ${before.node}), not the pair's, was ${what}`,
      });
  }
  const foreignIds = new Set(Object.keys(baseline.foreign));
  for (const t of sample.tasks) {
    if (baseline.tasks.has(t.upid) || !CONTAINER_TASK.test(t.type) || !foreignIds.has(t.id)) continue;
    found.push({
      key: `ForeignTouched:task:${t.upid}`,
      kind: "ForeignTouched",
      detail: `a ${t.type} task ran on CT ${t.id}, not the pair's (${t.exitstatus ?? "running"})`,
    });
  }
  for (const c of sample.containers) {
    if (c.server !== undefined || baseline.foreign[c.vmid] || allowedForeign.has(c.vmid)) continue;
    found.push({
      key: `ForeignCreated:${c.vmid}`,
      kind: "ForeignCreated",
      detail: `CT ${c.vmid} (${c.hostname} on ${c.node}) appeared without the pair's owner tag`,
    });
  }
  return found;
}

/** A condition's life: from the first sample it held in to the first it no longer did. */
export interface Interval<K extends string = string> {
  key: string;
  kind: K;
  detail: string;
  from: number;
  /** Undefined while it still holds. */
  to?: number;
}

export interface Ledger<K extends string = string> {
  intervals: Interval<K>[];
  /** key -> index in intervals of the ones still open. */
  open: Record<string, number>;
}

export const emptyLedger = <K extends string>(): Ledger<K> => ({ intervals: [], open: {} });

/** The ledger after a sample at `at` in which exactly `conditions` hold. */
export function record<K extends string>(
  ledger: Ledger<K>,
  conditions: Condition<K>[],
  at: number,
): Ledger<K> {
  const intervals = [...ledger.intervals];
  const open: Record<string, number> = {};
  const holding = new Set(conditions.map((c) => c.key));
  for (const [key, i] of Object.entries(ledger.open)) {
    if (holding.has(key)) open[key] = i;
    else intervals[i] = { ...intervals[i]!, to: at };
  }
  for (const c of conditions) {
    if (open[c.key] !== undefined) continue;
    open[c.key] = intervals.length;
    intervals.push({ key: c.key, kind: c.kind, detail: c.detail, from: at });
  }
  return { intervals, open };
}

/** One task as the watch saw it: its first sample and the first sample it had ended in. */
export interface TaskTiming {
  upid: string;
  type: string;
  id: string;
  node: string;
  seenAt: number;
  endedAt?: number;
  exitstatus?: string;
}

export function timeTasks(
  known: Record<string, TaskTiming>,
  sample: Sample,
  baseline: Baseline,
): Record<string, TaskTiming> {
  let next = known;
  for (const t of sample.tasks) {
    if (baseline.tasks.has(t.upid)) continue;
    const seen = next[t.upid];
    if (seen && (seen.endedAt !== undefined || t.running)) continue;
    const timing: TaskTiming = seen ?? {
      upid: t.upid,
      type: t.type,
      id: t.id,
      node: t.node,
      seenAt: sample.at,
    };
    next = {
      ...next,
      [t.upid]: t.running
        ? timing
        : { ...timing, endedAt: sample.at, ...(t.exitstatus ? { exitstatus: t.exitstatus } : {}) },
    };
  }
  return next;
}

export interface MonitorOptions {
  /** metadata.uid of the LdapPair. */
  uid: string;
  servers?: string[];
  everyMs?: number;
  /** Judge "both down" from the first sample on, not only once both were seen up. */
  armed?: boolean;
}

export interface ContainerEventAt extends ContainerEvent {
  at: number;
}

/** Watches the simulator in this process; `stop()` ends it. */
export class InvariantMonitor {
  readonly servers: string[];
  readonly events: ContainerEventAt[] = [];
  private readonly baseline: Baseline;
  private readonly allowed = new Set<number>();
  private violationLedger = emptyLedger<ViolationKind>();
  private downLedger = emptyLedger<"Down">();
  private taskTimings: Record<string, TaskTiming> = {};
  private armed: boolean;
  private samples = 0;
  private readonly everSeen = new Map<string, ContainerSample>();
  private readonly timer: NodeJS.Timeout;
  private readonly onEvent: (e: ContainerEvent) => void;
  private stopped = false;
  readonly startedAt: number;

  constructor(
    private readonly sim: PveSimulator,
    private readonly o: MonitorOptions,
  ) {
    this.servers = o.servers ?? ["ldap1", "ldap2"];
    this.startedAt = Date.now();
    const first = sampleOf(sim.state, o.uid, this.startedAt);
    this.baseline = baselineOf(first);
    this.armed = o.armed ?? false;
    this.take(first);
    // A change between two polls would be missed: every container event is a sample too.
    this.onEvent = (e) => {
      const at = Date.now();
      this.events.push({ ...e, at });
      this.take(sampleOf(this.sim.state, this.o.uid, at));
    };
    sim.events.on("container", this.onEvent);
    this.timer = setInterval(
      () => this.take(sampleOf(this.sim.state, this.o.uid, Date.now())),
      o.everyMs ?? 25,
    );
  }

  /** A container the test itself made after watching began is no violation. */
  allowForeign(vmid: number): void {
    this.allowed.add(vmid);
  }

  private take(sample: Sample): void {
    if (this.stopped) return;
    this.samples++;
    for (const c of sample.containers) {
      const instance = `${c.vmid}@${c.address}`;
      if (!this.everSeen.has(instance)) this.everSeen.set(instance, c);
    }
    const up = serversUp(sample, this.servers);
    this.armed ||= this.servers.every((s) => up[s]);
    const found = violationsIn(this.baseline, sample, this.servers, this.armed, this.allowed);
    this.violationLedger = record(this.violationLedger, found, sample.at);
    this.downLedger = record(this.downLedger, downConditions(sample, this.servers), sample.at);
    this.taskTimings = timeTasks(this.taskTimings, sample, this.baseline);
  }

  /** Every violation seen so far (an open one has no `to`). */
  get violations(): Interval<ViolationKind>[] {
    return this.violationLedger.intervals;
  }

  /** When `server` had no running, listening container. */
  downWindows(server: string): Interval<"Down">[] {
    return this.downLedger.intervals.filter((i) => i.key === `Down:${server}`);
  }

  /** The tasks started since watching began, oldest first. */
  get tasks(): TaskTiming[] {
    return Object.values(this.taskTimings).sort((a, b) => a.seenAt - b.seenAt);
  }

  /** Every container seen since watching began, as first seen (its server, image, node). */
  get containersSeen(): ContainerSample[] {
    return [...this.everSeen.values()];
  }

  get sampleCount(): number {
    return this.samples;
  }

  /** One line per violation, for a failing expectation's message. */
  describe(): string {
    return this.violations
      .map(
        (v) =>
          `${v.kind} at +${v.from - this.startedAt} ms${v.to !== undefined ? ` for ${v.to - v.from} ms` : ""}: ${v.detail}`,
      )
      .join("\n");
  }

  stop(): Interval<ViolationKind>[] {
    if (!this.stopped) {
      this.take(sampleOf(this.sim.state, this.o.uid, Date.now()));
      this.stopped = true;
      clearInterval(this.timer);
      this.sim.events.off("container", this.onEvent);
    }
    return this.violations;
  }
}
