// A small model of Proxmox for driving the planner to the end: each action
// starts what Proxmox would start (a task that ends after `taskLooks` looks,
// its effect applied when it ends, refused as Proxmox refuses it), time moves
// by the plan's requeue, and the status the shell would write is fed back,
// unless a step's write is to be lost (the operator killed between act and
// status write). The invariants of a rollout are checked at every step:
// never both servers down once the pair served, never two running containers
// for one server, nothing that is not the pair's touched.
import { expect } from "vitest";
import type { LdapPairSpec, LdapPairStatus } from "../../src/api/ldappair.js";
import { encodeProxmoxEnv } from "../../src/gateway/env.js";
import { parseTags } from "../../src/proxmox/tags.js";
import type {
  Action,
  DesiredPair,
  Observation,
  ObservedContainer,
  ObservedServer,
  ObservedTask,
  PairMeta,
  Plan,
  PlanInput,
} from "../../src/reconcile/model.js";
import { plan, planTaskStarted } from "../../src/reconcile/plan.js";
import { setConditions } from "../../src/runtime/conditions.js";
import { DATABASE_OK, FAILING_PROBE, IMAGE_ENV, META, OTHER_UID, PASSING_PROBE } from "./fixtures.js";
import { NOW, checkInvariants, desiredOf } from "./plan-world.js";

export const BOOT_MS = 3_000;
/** A container of someone else's on the same cluster: never to be touched. */
export const FOREIGN_VMID = 90;

export interface Ct {
  vmid: number;
  node: string;
  status: "running" | "stopped";
  config: Record<string, string | number>;
  /** The volume it was made from: an image in `badImages` never answers its probe. */
  volid: string;
  lock?: string;
  pendingEnv?: string;
  startedAt?: number;
}

interface Task {
  endsAt: number;
  apply: () => string | undefined;
  exit?: string;
  log: string[];
}

export class Site {
  now = NOW.getTime();
  cts = new Map<number, Ct>();
  images: Record<string, string[]> = { pve1: [], pve2: [] };
  realm?: Record<string, string | number>;
  nextVmid = 101;
  tasks = new Map<string, Task>();
  /** Every action, as `Kind server` (or `Kind`). */
  log: string[] = [];
  /** Every action with a vmid, for the foreign-container check. */
  touched: number[] = [];
  /** Tasks that ended with an error: Proxmox refusing what it was asked. */
  failedTasks: string[] = [];
  /** Volumes whose gateways never pass their probe. */
  badImages = new Set<string>();
  /** When set, only this server's containers on a bad image fail (a fault of its node, say). */
  badOnlyFor?: string;

  constructor(
    readonly o: {
      /** How long a task runs (default 0: it has ended by the next look). */
      taskMs?: number;
      /** The error a task ends with, if it is to fail (Proxmox refusing a configuration, a pull that cannot be made). */
      failTask?: (a: Action) => string | undefined;
    } = {},
  ) {
    this.cts.set(FOREIGN_VMID, {
      vmid: FOREIGN_VMID,
      node: "pve1",
      status: "running",
      config: { hostname: "web1", tags: `ldappair-owner-${OTHER_UID};ldappair-server-web1` },
      volid: "local:vztmpl/debian.tar",
      startedAt: this.now - 86_400_000,
    });
  }

  ours(uid = META.uid): Ct[] {
    return [...this.cts.values()].filter((c) => parseTags(String(c.config["tags"])).owners.includes(uid));
  }

  serverOf(c: Ct): string | undefined {
    return parseTags(String(c.config["tags"])).servers[0];
  }

  booted(c: Ct): boolean {
    return c.status === "running" && this.now - c.startedAt! >= BOOT_MS;
  }

  healthy(c: Ct): boolean {
    const bad = this.badImages.has(c.volid) && (!this.badOnlyFor || this.serverOf(c) === this.badOnlyFor);
    return this.booted(c) && !bad;
  }

  observe(desired: DesiredPair, recorded?: LdapPairStatus["task"]): Observation {
    const servers: ObservedServer[] = desired.servers.map((d) => ({
      name: d.name,
      foreign: [],
      containers: this.ours()
        .filter((c) => this.serverOf(c) === d.name)
        .sort((a, b) => a.vmid - b.vmid)
        .map((c) => this.observed(c)),
    }));
    return {
      secrets: { ok: true },
      proxmox: { ok: true, release: "9.1" },
      servers,
      images: this.images,
      realm: this.realm ? { config: this.realm, digest: "r" } : {},
      nodeDns: {},
      database: DATABASE_OK,
      ...(recorded ? { task: this.taskState(recorded.upid) } : {}),
    };
  }

  private observed(c: Ct): ObservedContainer {
    const tags = parseTags(String(c.config["tags"]));
    const running = c.status === "running";
    return {
      vmid: c.vmid,
      node: c.node,
      status: c.status,
      ...(c.lock ? { lock: c.lock } : {}),
      configHash: tags.configHashes[0]!,
      buildHash: tags.buildHashes![0]!,
      config: { ...c.config, digest: `d${c.vmid}` },
      pending: c.pendingEnv ? { env: c.pendingEnv } : {},
      ...(running
        ? {
            uptimeSeconds: Math.floor((this.now - c.startedAt!) / 1000),
            address: `10.0.0.${c.vmid}`,
            probe: this.healthy(c) ? PASSING_PROBE : FAILING_PROBE,
          }
        : {}),
    };
  }

  private taskState(upid: string): ObservedTask {
    const task = this.tasks.get(upid);
    if (!task) return { upid, state: "failed", exitStatus: "no such task" };
    if (task.exit === undefined) return { upid, state: "running" };
    return task.exit === "OK"
      ? { upid, state: "ok", exitStatus: "OK", log: task.log }
      : { upid, state: "failed", exitStatus: task.exit, log: task.log };
  }

  /** Ends every task whose time has come, in the order they started, whether a status records it or not. */
  settle(): void {
    for (const [upid, t] of this.tasks)
      if (t.exit === undefined && t.endsAt <= this.now) {
        t.exit = t.apply() ?? "OK";
        if (t.exit !== "OK") this.failedTasks.push(`${upid}: ${t.exit}`);
        this.checkOneRunningPerServer();
      }
  }

  /** Does what Proxmox does; returns a UPID for a task. */
  act(a: Action): string | undefined {
    this.log.push(a.kind + ("server" in a ? ` ${a.server}` : ""));
    if ("vmid" in a) this.touched.push(a.vmid);
    const upid = `UPID:pve1:00000001:00000001:${(this.log.length + 0x10000000).toString(16)}:x:${this.log.length}:root@pam!op:`;
    const fault = this.o.failTask?.(a);
    const task = (apply: () => string | undefined, log: string[] = []) => {
      this.tasks.set(upid, {
        endsAt: this.now + (this.o.taskMs ?? 0),
        apply: fault ? () => fault : apply,
        log,
      });
      return upid;
    };
    switch (a.kind) {
      case "PullImage":
        return task(() => {
          const listed = this.images[a.node] ?? [];
          if (listed.includes(a.volid)) return "refusing to override existing file";
          this.images[a.node] = [...listed, a.volid];
          return undefined;
        });
      case "CreateContainer": {
        if (fault) return task(() => fault);
        const vmid = this.nextVmid++;
        const { ostemplate, unprivileged: _u, ...params } = a.params;
        expect(this.images[a.node], "created from a pulled image").toContain(ostemplate);
        this.cts.set(vmid, {
          vmid,
          node: a.node,
          status: "stopped",
          lock: "create",
          volid: String(ostemplate),
          config: { ...(params as Record<string, string | number>), env: encodeProxmoxEnv(IMAGE_ENV) },
        });
        return task(() => void delete this.cts.get(vmid)!.lock);
      }
      case "ConfigureEnv": {
        const ct = this.cts.get(a.vmid)!;
        if (ct.status === "running") ct.pendingEnv = a.env;
        else ct.config["env"] = a.env;
        return undefined;
      }
      case "UpdateInPlace":
        Object.assign(this.cts.get(a.vmid)!.config, a.set);
        return undefined;
      case "StartContainer":
        return task(() => {
          const ct = this.cts.get(a.vmid);
          if (!ct) return `CT ${a.vmid} does not exist`;
          if (ct.status === "running") return `CT ${a.vmid} already running`;
          ct.status = "running";
          ct.startedAt = this.now;
          // Pending changes apply at the start.
          if (ct.pendingEnv) ct.config["env"] = ct.pendingEnv;
          ct.pendingEnv = undefined;
          return undefined;
        });
      case "StopContainer":
        return task(() => {
          const ct = this.cts.get(a.vmid);
          if (!ct || ct.status !== "running") return `CT ${a.vmid} not running`;
          ct.status = "stopped";
          return undefined;
        });
      case "DeleteContainer":
        return task(() => {
          const ct = this.cts.get(a.vmid);
          if (!ct) return `CT ${a.vmid} does not exist`;
          if (ct.status === "running") return `CT ${a.vmid} is running`;
          this.cts.delete(a.vmid);
          return undefined;
        });
      case "DeleteImage":
        return task(() => {
          const listed = this.images[a.node] ?? [];
          if (!listed.includes(a.volid)) return `volume ${a.volid} does not exist`;
          this.images[a.node] = listed.filter((v) => v !== a.volid);
          return undefined;
        });
      case "CreateRealm": {
        const { realm: _r, ...config } = a.params;
        this.realm = config;
        return undefined;
      }
      case "UpdateRealm":
        this.realm = { ...this.realm, ...a.set };
        return undefined;
      case "SyncRealm":
        return task(() => undefined, ["adding user 'alice@ldap'", "adding group 'devs-ldap' (1 member)"]);
      default:
        throw new Error(`unexpected ${a.kind}`);
    }
  }

  /** Servers answering clients now: running, booted and healthy. */
  serving(): string[] {
    return [
      ...new Set(
        this.ours()
          .filter((c) => this.healthy(c))
          .map((c) => this.serverOf(c)!),
      ),
    ];
  }

  checkOneRunningPerServer(): void {
    const running = this.ours()
      .filter((c) => c.status === "running")
      .map((c) => this.serverOf(c));
    expect(new Set(running).size, `two running containers for one server: ${running.join(", ")}`).toBe(
      running.length,
    );
  }

  /** The pair's containers by server: [vmid, volid, status]. */
  layout(): Record<string, [number, string, string][]> {
    const out: Record<string, [number, string, string][]> = {};
    for (const c of this.ours()) (out[this.serverOf(c)!] ??= []).push([c.vmid, c.volid, c.status]);
    return out;
  }
}

export interface Drive {
  /** The spec at each step (a change mid-rollout); default the one given. */
  specAt?: (step: number, site: Site) => LdapPairSpec;
  metaAt?: (step: number, site: Site) => PairMeta;
  /** This step's status write is lost (the operator killed after act). */
  loseWriteAt?: number;
  maxSteps?: number;
  /** Stop when this holds (default: Ready, nothing to do, no task). */
  until?: (p: Plan, status: LdapPairStatus, site: Site) => boolean;
  onPlan?: (p: Plan, input: PlanInput, step: number) => void;
}

export interface Run {
  status: LdapPairStatus;
  ended: boolean;
  steps: number;
  /** Clock times a server was stopped, by server name. */
  downs: { server: string; at: number; vmid: number }[];
  plans: Plan[];
}

const isReady = (status: LdapPairStatus) =>
  status.conditions?.find((c) => c.type === "Ready")?.status === "True";

export function drive(site: Site, spec: LdapPairSpec, status: LdapPairStatus, o: Drive = {}): Run {
  const downs: Run["downs"] = [];
  const plans: Plan[] = [];
  let served = isReady(status);
  const until = o.until ?? ((p, s) => isReady(s) && !p.action && !s.task);
  for (let step = 1; step <= (o.maxSteps ?? 300); step++) {
    const current = o.specAt?.(step, site) ?? spec;
    const meta = o.metaAt?.(step, site) ?? META;
    const desired = desiredOf(current);
    site.settle();
    const observed = site.observe(desired, status.task);
    const input: PlanInput = { now: new Date(site.now), meta, spec: current, status, observed, desired };
    const p = plan(input);
    checkInvariants(input, p);
    o.onPlan?.(p, input, step);
    plans.push(p);
    const conditions = setConditions(status.conditions ?? [], p.conditions, meta.generation, input.now);
    const written = (s: typeof p.status): LdapPairStatus => ({
      ...JSON.parse(JSON.stringify(s)),
      conditions,
      observedGeneration: meta.generation,
    });
    let next = written(p.status);
    if (p.action) {
      expect(
        p.action && "vmid" in p.action ? p.action.vmid : 0,
        "a foreign container is never touched",
      ).not.toBe(FOREIGN_VMID);
      if (p.action.kind === "StopContainer")
        downs.push({ server: p.action.server, at: site.now, vmid: p.action.vmid });
      const upid = site.act(p.action);
      if (upid) next = written(planTaskStarted(input, p, upid));
    }
    if (step !== o.loseWriteAt) status = next;
    served ||= isReady(status);
    if (served)
      expect(site.serving().length, `both servers down at step ${step}: ${p.explanation}`).toBeGreaterThan(0);
    site.checkOneRunningPerServer();
    if (until(p, status, site)) return { status, ended: true, steps: step, downs, plans };
    site.now += Math.min(p.requeueAfterMs, 30_000);
  }
  return { status, ended: false, steps: o.maxSteps ?? 300, downs, plans };
}

/** Nothing of another owner was touched, and each server has exactly one container, the spec's. */
export function expectConverged(site: Site, spec: LdapPairSpec): void {
  expect(site.touched).not.toContain(FOREIGN_VMID);
  expect(site.cts.get(FOREIGN_VMID)).toMatchObject({ status: "running", config: { hostname: "web1" } });
  const desired = desiredOf(spec);
  for (const d of desired.servers) {
    const mine = site.ours().filter((c) => site.serverOf(c) === d.name);
    expect(
      mine.map((c) => [c.volid, c.status]),
      `${d.name}'s containers`,
    ).toEqual([[d.imageVolume, "running"]]);
    expect(parseTags(String(mine[0]!.config["tags"])).configHashes).toEqual([d.configHash]);
  }
}
