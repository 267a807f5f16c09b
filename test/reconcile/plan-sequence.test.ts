// The planner driven to the end against a small model of Proxmox: each
// action changes the model as Proxmox would (a task ends by the next look),
// time moves by the plan's requeue, and the status the shell would write is
// fed back. From nothing the pair reaches Ready; an image change rolls one
// server at a time, never both down, the second only after the settle time;
// nothing is created twice. Proves the table converges, not only its rows.
import { describe, expect, it } from "vitest";
import type { LdapPairSpec, LdapPairStatus } from "../../src/api/ldappair.js";
import { encodeProxmoxEnv } from "../../src/gateway/env.js";
import { parseEnv } from "../../src/proxmox/normalize.js";
import { parseTags } from "../../src/proxmox/tags.js";
import type {
  Action,
  DesiredPair,
  Observation,
  ObservedContainer,
  ObservedServer,
} from "../../src/reconcile/model.js";
import { plan, planTaskStarted } from "../../src/reconcile/plan.js";
import { setConditions } from "../../src/runtime/conditions.js";
import { DATABASE_OK, FAILING_PROBE, IMAGE_ENV, META, PASSING_PROBE } from "./fixtures.js";
import { NOW, checkInvariants, desiredOf } from "./plan-world.js";
import { specWith } from "../support/spec.js";

const BOOT_MS = 3_000;

interface Ct {
  vmid: number;
  node: string;
  status: "running" | "stopped";
  config: Record<string, string | number>;
  pendingEnv?: string;
  startedAt?: number;
}

/** Proxmox as the planner sees it, changed by its actions. */
class Site {
  now = NOW.getTime();
  cts = new Map<number, Ct>();
  images: Record<string, string[]> = { pve1: [] };
  realm?: Record<string, string | number>;
  nextVmid = 101;
  tasks = new Map<string, { log: string[] }>();
  log: string[] = [];

  observe(desired: DesiredPair): Observation {
    const servers: ObservedServer[] = desired.servers.map((d) => ({
      name: d.name,
      foreign: [],
      containers: [...this.cts.values()]
        .filter((c) => parseTags(String(c.config["tags"])).servers.includes(d.name))
        .map((c): ObservedContainer => {
          const tags = parseTags(String(c.config["tags"]));
          const booted = c.status === "running" && this.now - c.startedAt! >= BOOT_MS;
          return {
            vmid: c.vmid,
            node: c.node,
            status: c.status,
            configHash: tags.configHashes[0]!,
            buildHash: tags.buildHashes![0]!,
            config: { ...c.config, digest: `d${c.vmid}` },
            pending: c.pendingEnv ? { env: c.pendingEnv } : {},
            ...(c.status === "running"
              ? { uptimeSeconds: Math.floor((this.now - c.startedAt!) / 1000), address: `10.0.0.${c.vmid}` }
              : {}),
            ...(c.status === "running" ? { probe: booted ? PASSING_PROBE : FAILING_PROBE } : {}),
          };
        }),
    }));
    return {
      secrets: { ok: true },
      proxmox: { ok: true, release: "9.1" },
      servers,
      images: this.images,
      realm: this.realm ? { config: this.realm, digest: "r" } : {},
      nodeDns: {},
      database: DATABASE_OK,
    };
  }

  /** Does what Proxmox does; returns a UPID for a task (which has ended by the next look). */
  act(a: Action): string | undefined {
    this.log.push(a.kind + ("server" in a ? ` ${a.server}` : ""));
    const upid = `UPID:pve1:00000001:00000001:${(this.log.length + 0x10000000).toString(16)}:x:${this.log.length}:root@pam!op:`;
    switch (a.kind) {
      case "PullImage":
        this.images[a.node] = [...(this.images[a.node] ?? []), a.volid];
        break;
      case "CreateContainer": {
        const vmid = this.nextVmid++;
        const { ostemplate, unprivileged: _u, ...params } = a.params;
        expect(this.images[a.node]).toContain(ostemplate);
        this.cts.set(vmid, {
          vmid,
          node: a.node,
          status: "stopped",
          config: { ...(params as Record<string, string | number>), env: encodeProxmoxEnv(IMAGE_ENV) },
        });
        break;
      }
      case "ConfigureEnv": {
        const ct = this.cts.get(a.vmid)!;
        if (ct.status === "running") ct.pendingEnv = a.env;
        else ct.config["env"] = a.env;
        break;
      }
      case "UpdateInPlace":
        Object.assign(this.cts.get(a.vmid)!.config, a.set);
        break;
      case "StartContainer": {
        const ct = this.cts.get(a.vmid)!;
        expect(ct.status).toBe("stopped");
        ct.status = "running";
        ct.startedAt = this.now;
        // Pending changes apply at the start.
        if (ct.pendingEnv) ct.config["env"] = ct.pendingEnv;
        ct.pendingEnv = undefined;
        break;
      }
      case "StopContainer":
        this.cts.get(a.vmid)!.status = "stopped";
        break;
      case "DeleteContainer":
        expect(this.cts.get(a.vmid)!.status).toBe("stopped");
        this.cts.delete(a.vmid);
        break;
      case "CreateRealm": {
        const { realm: _r, ...config } = a.params;
        this.realm = config;
        break;
      }
      case "UpdateRealm":
        this.realm = { ...this.realm, ...a.set };
        break;
      case "SyncRealm":
        this.tasks.set(upid, { log: ["adding user 'alice@ldap'", "adding group 'devs-ldap' (1 member)"] });
        break;
      default:
        throw new Error(`unexpected ${a.kind}`);
    }
    return [
      "PullImage",
      "CreateContainer",
      "StartContainer",
      "StopContainer",
      "DeleteContainer",
      "SyncRealm",
    ].includes(a.kind)
      ? upid
      : undefined;
  }

  /** Servers answering clients now: running and booted. */
  serving(): number {
    return [...this.cts.values()].filter((c) => c.status === "running" && this.now - c.startedAt! >= BOOT_MS)
      .length;
  }
}

interface Run {
  status: LdapPairStatus;
  ready: boolean;
  steps: number;
  /** Clock times a server stopped serving, by server name. */
  downs: { server: string; at: number }[];
  minServingAfterReady: number;
}

function drive(site: Site, spec: LdapPairSpec, status: LdapPairStatus, maxSteps = 200): Run {
  const desired = desiredOf(spec);
  const downs: Run["downs"] = [];
  let wasReady = false;
  let minServing = 2;
  for (let step = 1; step <= maxSteps; step++) {
    const observed = site.observe(desired);
    const task = status.task
      ? {
          ...observed,
          task: {
            upid: status.task.upid,
            state: "ok" as const,
            exitStatus: "OK",
            ...(site.tasks.get(status.task.upid) ?? {}),
          },
        }
      : observed;
    const input = { now: new Date(site.now), meta: META, spec, status, observed: task, desired };
    const p = plan(input);
    checkInvariants(input, p);
    const conditions = setConditions(status.conditions ?? [], p.conditions, 1, input.now);
    let next: LdapPairStatus = { ...JSON.parse(JSON.stringify(p.status)), conditions, observedGeneration: 1 };
    if (p.action) {
      if (p.action.kind === "StopContainer") downs.push({ server: p.action.server, at: site.now });
      const upid = site.act(p.action);
      if (upid)
        next = {
          ...JSON.parse(JSON.stringify(planTaskStarted(input, p, upid))),
          conditions,
          observedGeneration: 1,
        };
    }
    status = next;
    const ready = conditions.find((c) => c.type === "Ready")?.status === "True";
    if (wasReady) minServing = Math.min(minServing, site.serving());
    if (ready && !p.action && !status.task)
      return { status, ready, steps: step, downs, minServingAfterReady: minServing };
    wasReady ||= ready;
    site.now += Math.min(p.requeueAfterMs, 30_000);
  }
  return { status, ready: false, steps: maxSteps, downs, minServingAfterReady: minServing };
}

describe("the planner driven to the end", () => {
  it("provisions a pair from nothing to Ready, each thing once", () => {
    const site = new Site();
    const result = drive(site, specWith(), {});
    expect(result.ready, site.log.join(", ")).toBe(true);
    expect(site.log.filter((a) => a === "PullImage")).toHaveLength(1);
    expect(site.log.filter((a) => a.startsWith("CreateContainer"))).toEqual([
      "CreateContainer ldap1",
      "CreateContainer ldap2",
    ]);
    expect(site.log.filter((a) => a === "CreateRealm")).toHaveLength(1);
    expect(site.log.at(-1)).toBe("SyncRealm");
    expect(site.cts.size).toBe(2);
    const env = parseEnv(String(site.cts.get(101)!.config["env"]));
    expect(env.get("LDAP_COMMON_NAME")).toBe("ldap1");
    expect(env.get("PATH")).toBe(IMAGE_ENV[0]![1]);
    expect(result.status.realm).toMatchObject({ syncState: "Synced", usersImported: 1, groupsImported: 1 });
    expect(result.status.phase).toBe("Ready");
  });

  it("rolls a new image one server at a time: never both down, the second after the settle time", () => {
    const site = new Site();
    const first = drive(site, specWith(), {});
    expect(first.ready).toBe(true);
    site.now += 3_600_000;
    site.log = [];
    const result = drive(site, specWith({ image: "ghcr.io/mieweb/ldap-gateway:1.5.0" }), first.status);
    expect(result.ready, site.log.join(", ")).toBe(true);
    expect(site.log).toEqual([
      "PullImage",
      "StopContainer ldap1",
      "DeleteContainer ldap1",
      "CreateContainer ldap1",
      "ConfigureEnv ldap1",
      "StartContainer ldap1",
      "StopContainer ldap2",
      "DeleteContainer ldap2",
      "CreateContainer ldap2",
      "ConfigureEnv ldap2",
      "StartContainer ldap2",
      "SyncRealm",
    ]);
    expect(result.downs.map((d) => d.server)).toEqual(["ldap1", "ldap2"]);
    expect(result.downs[1]!.at - result.downs[0]!.at).toBeGreaterThanOrEqual(45_000);
    expect(result.minServingAfterReady).toBeGreaterThanOrEqual(1);
    expect(result.status.realm?.lastSyncReason).toBe("ServerRebuilt");
    expect(result.status.rollout).toBeUndefined();
  });

  it("restarts for an env change, one server at a time, and records the new hash in the tags", () => {
    const site = new Site();
    const first = drive(site, specWith(), {});
    site.now += 600_000; // within the sync interval: no periodic sync in the way
    site.log = [];
    const spec = specWith({ extraEnv: [{ name: "LOG_LEVEL", value: "debug" }] });
    const result = drive(site, spec, first.status);
    expect(result.ready, site.log.join(", ")).toBe(true);
    expect(site.log).toEqual([
      "ConfigureEnv ldap1",
      "StopContainer ldap1",
      "StartContainer ldap1",
      "UpdateInPlace ldap1",
      "ConfigureEnv ldap2",
      "StopContainer ldap2",
      "StartContainer ldap2",
      "UpdateInPlace ldap2",
    ]);
    expect(result.downs[1]!.at - result.downs[0]!.at).toBeGreaterThanOrEqual(45_000);
    const desired = desiredOf(spec);
    expect(parseTags(String(site.cts.get(101)!.config["tags"])).configHashes).toEqual([
      desired.servers[0]!.configHash,
    ]);
  });

  it("changes memory in place: no stop at all", () => {
    const site = new Site();
    const first = drive(site, specWith(), {});
    site.log = [];
    const result = drive(site, specWith({ resources: { memoryMiB: 1024 } }), first.status);
    expect(result.ready).toBe(true);
    expect(site.log).toEqual(["UpdateInPlace ldap1", "UpdateInPlace ldap2"]);
    expect(result.downs).toEqual([]);
  });
});
